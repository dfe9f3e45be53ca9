//! An actix-web 4 service around a long-lived `logs` pipeline, on the
//! server's own actix System, in any mode.
//!
//! - `POST /lines`: the body is raw access-log bytes. All bodies together
//!   form one byte stream, as if appended to one file: a body may end in
//!   the middle of a line, whose rest comes in the next body. The response
//!   comes once the body's complete lines are accepted by the pipeline (it
//!   waits while the pipeline is full).
//! - `GET /summary`: the `logs` summary JSON of every line accepted before
//!   the request, byte-identical to `parpipe run --mode serial` on those lines.
//! - `GET /stats`: live counters (batches and lines pushed, taken, queued)
//!   and the run's report so far (`report`: per stage records in and out,
//!   busy, idle and blocked seconds; per worker rows in multiprocess mode).
//!
//! Run: `cargo run --release --example embed_actix_web -- --listen 127.0.0.1:0 --mode pipeline`
//! Flags: `--listen ADDR` (default 127.0.0.1:8080; port 0 picks one),
//! `--mode serial|pipeline|multiprocess` (default pipeline), `--workers N`
//! (multiprocess, default 2). It prints `listening on http://IP:PORT` on
//! stdout once bound. In multiprocess mode the workers are this binary
//! (see `dispatch_if_worker`, the first line of `main`).

use actix_web::{get, post, web, App, HttpResponse, HttpServer};
use parpipe::sources::LineBatch;
use parpipe::workloads::logs::{self, metrics::LogsPartial};
use parpipe::{Key, Mode, Registry, RunConfig, RunHandle};
use std::io::Write;
use std::process::ExitCode;

/// Lines per pushed batch.
const BATCH_LINES: usize = 8192;
/// Largest body accepted.
const MAX_BODY: usize = 64 << 20;

type LogsRun = RunHandle<LineBatch, LogsPartial, LogsPartial>;

/// The pipeline's handle and the unfinished line of the byte stream.
struct State {
    run: LogsRun,
    /// Held while a body is split and pushed, so bodies join in the order
    /// they are handled; holds the bytes after the last line feed so far.
    carry: tokio::sync::Mutex<Vec<u8>>,
}

fn registry() -> (Registry, Key<(), LogsPartial>) {
    let mut registry = Registry::new();
    let key = registry.register("logs-pushed", |(): ()| Ok(logs::builder().build_pushed()));
    (registry, key)
}

/// Cuts `text` (whole lines, each ending with LF) into batches of at most
/// `BATCH_LINES` lines.
fn batches(text: &[u8]) -> Result<Vec<LineBatch>, String> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut lines = 0;
    for (i, &b) in text.iter().enumerate() {
        if b == b'\n' {
            lines += 1;
            if lines == BATCH_LINES {
                out.push(LineBatch::from_text(0, &text[start..=i])?);
                start = i + 1;
                lines = 0;
            }
        }
    }
    if start < text.len() {
        out.push(LineBatch::from_text(0, &text[start..])?);
    }
    Ok(out)
}

#[post("/lines")]
async fn post_lines(state: web::Data<State>, body: web::Bytes) -> HttpResponse {
    let mut carry = state.carry.lock().await;
    let Some(last_lf) = body.iter().rposition(|&b| b == b'\n') else {
        carry.extend_from_slice(&body);
        return HttpResponse::Ok().body("0 lines\n");
    };
    let mut text = std::mem::take(&mut *carry);
    text.extend_from_slice(&body[..=last_lf]);
    carry.extend_from_slice(&body[last_lf + 1..]);
    let batches = match batches(&text) {
        Ok(b) => b,
        Err(e) => return HttpResponse::BadRequest().body(format!("{e}\n")),
    };
    let mut lines = 0;
    for batch in batches {
        lines += batch.len();
        // Waits while the pipeline is full: the client waits with it.
        if let Err(e) = state.run.push(batch).await {
            return HttpResponse::ServiceUnavailable().body(format!("{e}\n"));
        }
    }
    HttpResponse::Ok().body(format!("{lines} lines\n"))
}

#[get("/summary")]
async fn get_summary(state: web::Data<State>) -> HttpResponse {
    match state.run.snapshot().await {
        Ok(partial) => HttpResponse::Ok()
            .content_type("application/json")
            .body(partial.summary().to_json()),
        Err(e) => HttpResponse::InternalServerError().body(format!("{e}\n")),
    }
}

#[get("/stats")]
async fn get_stats(state: web::Data<State>) -> HttpResponse {
    let s = state.run.stats();
    let json = serde_json::json!({
        "batches_pushed": s.batches_pushed,
        "lines_pushed": s.records_pushed,
        "batches_taken": s.batches_taken,
        "batches_queued": s.queued,
        "uptime_ms": s.uptime_ms,
        // The run's report so far (per stage records and busy/idle/blocked
        // seconds, per worker rows), about 250 ms old at most; null before
        // the first refresh.
        "report": state.run.live().map(|live| live.report),
    });
    HttpResponse::Ok().json(json)
}

fn usage(message: &str) -> ExitCode {
    eprintln!("embed_actix_web: {message}");
    eprintln!(
        "usage: embed_actix_web [--listen ADDR] [--mode serial|pipeline|multiprocess] [--workers N]"
    );
    ExitCode::from(2)
}

#[actix_web::main]
async fn main() -> ExitCode {
    let (registry, key) = registry();
    parpipe::worker::dispatch_if_worker(&registry);

    let mut listen = "127.0.0.1:8080".to_string();
    let mut mode = Mode::Pipelined;
    let mut workers = 2usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            return usage(&format!("{flag} needs a value"));
        };
        match flag.as_str() {
            "--listen" => listen = value,
            "--mode" => {
                mode = match value.as_str() {
                    "serial" => Mode::Serial,
                    "pipeline" => Mode::Pipelined,
                    "multiprocess" => Mode::Multiprocess,
                    other => return usage(&format!("unknown mode '{other}'")),
                }
            }
            "--workers" => match value.parse() {
                Ok(n) if (1..=256).contains(&n) => workers = n,
                _ => return usage("--workers must be between 1 and 256"),
            },
            other => return usage(&format!("unknown flag '{other}'")),
        }
    }
    let config = RunConfig {
        mode,
        workers: Some(workers),
        ..RunConfig::default()
    };
    // The pipeline runs on this server's System (workers rebuild it from
    // the registry in multiprocess mode).
    let run: Result<LogsRun, parpipe::Error> = match mode {
        Mode::Multiprocess => registry.start(&key, &(), &config),
        _ => logs::builder().build_pushed().start(&config),
    };
    let run = match run {
        Ok(run) => run,
        Err(e) => {
            eprintln!("embed_actix_web: {e}");
            return ExitCode::FAILURE;
        }
    };
    let state = web::Data::new(State {
        run,
        carry: tokio::sync::Mutex::new(Vec::new()),
    });
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .service(post_lines)
            .service(get_summary)
            .service(get_stats)
    })
    .workers(2)
    .bind(&listen);
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            eprintln!("embed_actix_web: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    for addr in server.addrs() {
        println!("listening on http://{addr}");
    }
    let _ = std::io::stdout().flush();
    let served = server.run().await;
    // The server stopped (SIGTERM, Ctrl-C): stop the pipeline with it.
    state.run.abort();
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embed_actix_web: {e}");
            ExitCode::FAILURE
        }
    }
}
