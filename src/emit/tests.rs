//! The outputs port: order, room for pushes, the end of the stream, and a
//! dropped stream.

use super::*;
use futures_util::StreamExt;
use std::future::Future;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn batches_come_out_in_order_and_the_stream_ends_when_the_port_closes() {
    let (port, mut outputs) = port::<u32>(4);
    port.send(vec![1, 2]);
    port.send(vec![]);
    port.send(vec![3]);
    port.close();
    let got: Vec<Vec<u32>> = runtime().block_on(async { (&mut outputs).collect().await });
    assert_eq!(got, vec![vec![1, 2], vec![], vec![3]]);
}

#[test]
fn pushes_wait_while_the_reader_is_behind_and_go_on_once_it_reads() {
    let (port, mut outputs) = port::<u32>(2);
    assert!(port.has_room());
    port.send(vec![1]);
    port.send(vec![2]);
    assert!(!port.has_room(), "two batches wait: full");
    runtime().block_on(async {
        let waiting = port.wait();
        tokio::pin!(waiting);
        // Not ready while full.
        let waker = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        assert_eq!(outputs.next_batch().await, Some(vec![1]));
        waiting.await;
    });
    assert!(port.has_room());
}

#[test]
fn a_dropped_stream_never_makes_pushes_wait() {
    let (port, outputs) = port::<u32>(1);
    port.send(vec![1]);
    assert!(!port.has_room());
    drop(outputs);
    assert!(port.has_room());
    port.send(vec![2]);
    assert!(
        port.has_room(),
        "outputs are discarded once nobody reads them"
    );
}
