//! What the kernel drops for the underlay by itself: datagrams that find the receive
//! queue full are counted (`take_rx_overruns`), so that received plus overrun is what
//! was sent.

use super::*;
use crate::datapath::tunnel::Tunnel;

#[test]
fn underlay_counts_datagrams_lost_to_a_full_receive_queue() {
    let lab = Pair::new();
    let mut a = open(&lab.a, &UnderlayConfig::new(ip(V4.0)));
    let mut b = open(&lab.b, &UnderlayConfig::new(ip(V4.1)));
    assert_eq!(b.take_rx_overruns(), 0, "a fresh socket has lost nothing");
    // Far more than the receive buffer holds, while b reads nothing.
    let (pool, txs) = varied(ip(V4.1), MAX_BATCH);
    let rounds = 400;
    for _ in 0..rounds {
        send_all(&mut a, &pool, &txs);
    }
    let sent = (rounds * MAX_BATCH) as u64;
    std::thread::sleep(Duration::from_millis(200));
    let lost = b.take_rx_overruns();
    let got = receive_for(&mut b, usize::MAX, Duration::from_millis(500));
    let received = got.datagrams.len() as u64;
    eprintln!("sent {sent}: received {received}, lost to a full queue {lost}");
    assert!(lost > 0, "nothing overran: the test did not fill the queue");
    assert_eq!(received + lost, sent, "datagrams vanished uncounted");
    assert_eq!(b.take_rx_overruns(), 0, "counted twice");
}
