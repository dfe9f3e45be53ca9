//! Workers joining and leaving the coordinator, and their heartbeats (for
//! the live view): the scheduler learns of each, and a lost worker's
//! chunks that nobody else holds go back to the queue.

use super::{Coordinator, Heard, Joined, Left, WorkerRow};
use crate::metrics::WorkerReport;
use actix::prelude::*;
use std::time::Instant;

impl Handler<Joined> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: Joined, ctx: &mut Context<Self>) {
        tracing::info!(
            worker = msg.id,
            peer = %msg.peer,
            pid = msg.hello.worker_id,
            cores = msg.hello.cores,
            threads = msg.hello.threads,
            same_host = msg.same_host,
            allowed_roots = ?msg.hello.allowed_roots,
            "worker joined"
        );
        self.conns.insert(msg.id, msg.addr);
        self.pids.insert(msg.id, msg.hello.worker_id);
        if !msg.hello.allowed_roots.is_empty() {
            self.roots.insert(msg.id, msg.hello.allowed_roots.clone());
        }
        let name = crate::live::worker_name(&msg.peer, msg.same_host, msg.hello.worker_id);
        self.rows.insert(
            msg.id,
            WorkerRow {
                report: WorkerReport {
                    id: msg.id,
                    address: msg.peer,
                    name: name.clone(),
                    chunks: 0,
                    records: 0,
                    busy_seconds: 0.0,
                    requeued_chunks: 0,
                    cpu_percent: 0.0,
                    cpu_seconds: 0.0,
                    peak_rss_bytes: 0,
                    shipped_unreadable: 0,
                    unreadable_inputs: Vec::new(),
                },
                joined: Instant::now(),
                last_heard: Instant::now(),
                name,
            },
        );
        self.sched.add_worker(msg.id, msg.hello.threads as usize);
        if msg.holds {
            // Told to hold its partial, until that is found not to pay
            // (see `held.rs`).
            self.holding.insert(msg.id, Default::default());
            self.sched.set_holds(msg.id, true);
            if self.hold_decided == Some(false) {
                self.unhold(msg.id);
            }
        }
        self.alone_since = None;
        self.pump(ctx);
    }
}

impl Handler<Left> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: Left, ctx: &mut Context<Self>) {
        self.pids.remove(&msg.id);
        self.roots.remove(&msg.id);
        self.unreadable.remove(&msg.id);
        self.sent_in_files.retain(|&(worker, _)| worker != msg.id);
        if self.conns.remove(&msg.id).is_none() {
            return;
        }
        let lost = self.sched.remove_worker(msg.id);
        // Chunks answered into a partial that left with it run again.
        self.run_again(msg.id);
        self.holding.remove(&msg.id);
        if let Some(row) = self.rows.get_mut(&msg.id) {
            row.report.requeued_chunks += lost.len() as u64;
        }
        if lost.is_empty() {
            tracing::info!(worker = msg.id, "worker left: {}", msg.reason);
        } else {
            tracing::warn!(
                worker = msg.id,
                "worker lost ({}); re-queued chunks {:?}",
                msg.reason,
                lost
            );
        }
        if self.conns.is_empty() {
            self.alone_since = Some(Instant::now());
            self.last_loss = Some(format!("worker {}: {}", msg.id, msg.reason));
        }
        self.pump(ctx);
    }
}

impl Handler<Heard> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: Heard, _: &mut Context<Self>) {
        if let Some(row) = self.rows.get_mut(&msg.id) {
            row.last_heard = Instant::now();
        }
    }
}
