//! Opening and reading the inputs of a [`LineReader`]: each input in turn
//! (a file with its [`Watch`], standard input on its own thread, a followed
//! file), its gzip magic sniffed, and the read buffer refilled, with every
//! failure turned into an [`InputError`] naming the input and line.

use super::super::follow::{self, FollowReader};
use super::super::watch::Watch;
use super::stdin::{BatchClock, Patient};
use super::{InputError, InputSpec, LineReader, OpenInput, BUF_SIZE};
use std::fs::File;
use std::io::{self, BufReader, Read};

impl LineReader {
    /// Reads the next chunk of the current input into the (empty) buffer.
    /// False when a followed file had nothing new within its idle interval
    /// (the buffer stays empty; the caller may try again).
    pub(super) fn refill(&mut self) -> Result<bool, InputError> {
        let Some(cur) = self.current.as_mut() else {
            return Ok(true);
        };
        loop {
            match cur.source.read(&mut self.buf) {
                Ok(0) => {
                    if let Some(e) = cur.changed() {
                        return Err(e);
                    }
                    cur.eof = true;
                    return Ok(true);
                }
                Ok(k) => {
                    self.end = k;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && cur.follow => return Ok(false),
                Err(e) => {
                    if let Some(changed) = cur.changed() {
                        return Err(changed);
                    }
                    // flate2 reports bad headers, bad deflate data and
                    // truncation with these kinds; anything else comes from
                    // the file itself.
                    let corrupt = matches!(
                        e.kind(),
                        io::ErrorKind::InvalidInput
                            | io::ErrorKind::InvalidData
                            | io::ErrorKind::UnexpectedEof
                    );
                    return Err(InputError::Read {
                        input: cur.name.clone(),
                        line: cur.lines + 1,
                        what: if cur.gzip && corrupt {
                            "corrupt gzip data"
                        } else {
                            "read error"
                        },
                        source: e,
                    });
                }
            }
        }
    }

    /// Makes `source` the current input, with an empty buffer.
    pub(super) fn start_input(
        &mut self,
        name: String,
        source: Box<dyn Read + Send>,
        watch: Option<Watch>,
        follow: bool,
    ) {
        if self.buf.len() != BUF_SIZE {
            self.buf = vec![0; BUF_SIZE];
        }
        self.start = 0;
        self.end = 0;
        self.partial.clear();
        self.current = Some(OpenInput {
            name,
            source,
            gzip: false,
            lines: 0,
            eof: false,
            watch,
            follow,
        });
    }

    /// Opens `spec`, sniffs the gzip magic bytes and makes it current.
    pub(super) fn open(&mut self, spec: &InputSpec) -> Result<(), InputError> {
        let name = spec.display_name();
        let (watch, raw): (Option<Watch>, Box<dyn Read + Send>) = match spec {
            InputSpec::Stdin => {
                let clock = self.clock.get_or_insert_with(BatchClock::default).clone();
                let stdin = Patient::stdin(clock).map_err(|source| InputError::Open {
                    input: name.clone(),
                    source,
                })?;
                (None, Box::new(stdin))
            }
            InputSpec::Follow(path) => {
                let clock = self.clock.get_or_insert_with(BatchClock::default).clone();
                let reader = FollowReader::open(path, follow::global_stop(), follow::IDLE)
                    .map_err(|source| InputError::Open {
                        input: name.clone(),
                        source,
                    })?
                    .with_batch_clock(clock);
                // A growing file is read as it is: no watch (it is meant to
                // change) and no gzip sniffing (it is text, possibly empty yet).
                self.start_input(name, Box::new(reader), None, true);
                return Ok(());
            }
            InputSpec::File(path) => {
                // Checked first: on Unix a directory opens fine and fails
                // only on read, with a less helpful message.
                if path.is_dir() {
                    return Err(InputError::IsDirectory { input: name });
                }
                let opened = File::open(path).and_then(|f| Watch::open(path.clone(), f));
                match opened {
                    Ok(opened) => opened,
                    Err(source) => {
                        return Err(InputError::Open {
                            input: name,
                            source,
                        })
                    }
                }
            }
        };
        let pauses = matches!(spec, InputSpec::Stdin);
        self.start_input(name, raw, watch, pauses);
        // Sniff the first two bytes (a read may return fewer than asked),
        // waiting for them however long the batch's deadline.
        let deadline = self.clock.as_ref().and_then(BatchClock::suspend);
        let sniffed = self.sniff();
        if let Some(clock) = &self.clock {
            clock.restore(deadline);
        }
        sniffed
    }

    /// Reads the current input's first two bytes and, if they are gzip's
    /// magic, puts a decoder in front of it.
    pub(super) fn sniff(&mut self) -> Result<(), InputError> {
        while self.end < 2 {
            let before = self.end;
            let Some(cur) = self.current.as_mut() else {
                break;
            };
            let got = loop {
                match cur.source.read(&mut self.buf[before..]) {
                    Ok(k) => break k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(source) => {
                        return Err(InputError::Read {
                            input: cur.name.clone(),
                            line: 1,
                            what: "read error",
                            source,
                        })
                    }
                }
            };
            if got == 0 {
                if let Some(e) = cur.changed() {
                    return Err(e);
                }
                cur.eof = true;
                break;
            }
            self.end += got;
        }
        if self.buf[..self.end].starts_with(&[0x1f, 0x8b]) {
            if let Some(cur) = self.current.as_mut() {
                // Gzip: the bytes already read go back in front of the rest,
                // and the decoder's output is what gets cut into lines.
                // MultiGzDecoder, because `cat a.gz b.gz` is a valid gzip file.
                let head = io::Cursor::new(self.buf[..self.end].to_vec());
                let raw = std::mem::replace(&mut cur.source, Box::new(io::empty()));
                let decoder = flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(
                    BUF_SIZE,
                    head.chain(raw),
                ));
                cur.source = Box::new(decoder);
                cur.gzip = true;
                if cur.follow {
                    // A deflate stream is read in the decoder's own steps:
                    // it waits for whole batches.
                    cur.follow = false;
                    if let Some(clock) = &self.clock {
                        clock.turn_off();
                    }
                }
                if let Some(watch) = cur.watch.as_mut() {
                    watch.plain = false;
                }
                cur.eof = false;
                self.end = 0;
            }
        }
        Ok(())
    }

    /// Drops the current input after an error; reading goes on with the next.
    pub(super) fn abandon_current(&mut self) {
        self.current = None;
        self.start = 0;
        self.end = 0;
        self.partial.clear();
    }
}
