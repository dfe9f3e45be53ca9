//! The chunk engine: the input cut into chunks → scheduled (credits,
//! re-queue, one reorder buffer: [`schedule`]) → run on a transport
//! ([`transport`]: threads of this process, [`threads`], or worker
//! processes over the wire, `multiprocess/coordinator/wire.rs`) → partials
//! merged in order ([`crate::mode::chunked::merge_in_order`]).
//!
//! The shape follows communication layers such as timely dataflow's, where
//! one trait stands for "the other workers" and the computation is written
//! once against it: here the scheduler decides which worker runs which
//! chunk and when results are merged, and a transport only carries chunks
//! out and says when a worker is gone. Pipeline mode's reading lanes
//! (`pipelined/lanes.rs`) and multiprocess mode's coordinator both drive
//! the same [`schedule::Scheduler`] through [`transport::pump`]; what
//! differs between them (how many chunks a worker holds, how far reading
//! runs ahead, whether a silent worker's chunk is sent again) is a
//! [`schedule::Policy`].

pub(crate) mod schedule;
pub(crate) mod threads;
pub(crate) mod transport;
