//! `parpipe generate`: sample logs lines to standard output, or to a file
//! that appears whole or not at all.

use super::cli::GenerateArgs;
use super::Failure;
use anyhow::Context as _;
use parpipe::workloads::logs::generate::Generator;

use std::io::Write;
use std::path::Path;

pub(super) fn generate(args: GenerateArgs) -> Result<(), Failure> {
    let mut generator = Generator::new(args.seed, args.records);
    let Some(path) = &args.output else {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
        return match generator.write_all(&mut out).and_then(|_| out.flush()) {
            // A closed pipe (`parpipe generate … | head`) is the reader's choice, not a failure.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other
                .context("cannot write to standard output")
                .map_err(Failure::from),
        };
    };
    // Written under a temporary name and renamed: a failure leaves nothing.
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("--output '{}' names no file", path.display()))?
        .to_string_lossy()
        .into_owned();
    let tmp = parpipe::outputs::temp_path(dir, &name);
    let written = parpipe::outputs::create_temp(&tmp)
        .and_then(|file| {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            generator.write_all(&mut out)?;
            out.flush()
        })
        .with_context(|| format!("cannot write '{}'", tmp.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, path).with_context(|| {
                format!("cannot rename '{}' to '{}'", tmp.display(), path.display())
            })
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(Failure::from)
}
