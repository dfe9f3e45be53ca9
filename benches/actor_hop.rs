//! One actor hop per batch: a batch is sent to an actor on another Arbiter
//! (thread) and comes back, as between two pipeline-mode stages. The time
//! per iteration is the framework's overhead per batch (a round trip, so
//! two hops), independent of the batch's size since the batch is moved.

use actix::prelude::*;
use criterion::{criterion_group, criterion_main, Criterion};
use parpipe::sources::lines::batch::LineBatch;
use parpipe::workloads::logs::generate::Generator;

struct Echo;

impl Actor for Echo {
    type Context = Context<Self>;
}

struct Hop(LineBatch);

impl Message for Hop {
    type Result = LineBatch;
}

impl Handler<Hop> for Echo {
    type Result = MessageResult<Hop>;

    fn handle(&mut self, msg: Hop, _: &mut Context<Self>) -> Self::Result {
        MessageResult(msg.0)
    }
}

fn hop(c: &mut Criterion) {
    let system = actix::System::new();
    let arbiter = Arbiter::new();
    let handle = arbiter.handle();
    let addr = system.block_on(async move { Echo::start_in_arbiter(&handle, |_| Echo) });
    let mut batch = LineBatch::new(1);
    Generator::new(42, 8192).fill(&mut batch, 8192);
    let mut slot = Some(batch);
    c.bench_function("actor_round_trip_per_batch", |b| {
        b.iter(|| {
            let batch = slot.take().unwrap();
            let back = system.block_on(addr.send(Hop(batch))).unwrap();
            slot = Some(back);
        })
    });
    arbiter.stop();
    let _ = arbiter.join();
}

criterion_group!(benches, hop);
criterion_main!(benches);
