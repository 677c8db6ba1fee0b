//! Every command that prints a listing or an inspect prints it as JSON with
//! `--format json` (parsed strictly here) and as an aligned table with `--format table`.

mod common;

use std::time::Duration;

use common::nat::NatLab;
use common::require_root;

/// The display column where each line's second cell starts (after the first run of two
/// or more spaces).
fn second_column(table: &str) -> Vec<usize> {
    table
        .lines()
        .map(|l| {
            l.find("  ")
                .map(|i| i + l[i..].len() - l[i..].trim_start().len())
        })
        .map(|c| c.unwrap_or(usize::MAX))
        .collect()
}

/// ```text
///   c1 ---- host: vswitch (uplink ext0) ---- external
/// ```
/// Networks, an endpoint, a published port, a peer, learned MACs and a NAT connection,
/// then every listing in both formats.
#[test]
fn every_listing_prints_json_and_an_aligned_table() {
    require_root();
    let lab = NatLab::new("");
    let d = &lab.d;
    d.must(&["network", "create", "blue", "--subnet", "10.71.0.0/24"]);
    d.must(&[
        "network",
        "create",
        "a-much-longer-network-name",
        "--subnet",
        "10.72.0.0/24",
    ]);
    let c1 = lab.container("blue");
    let tap = common::unique("tp");
    let connected = d.json(&[
        "network", "connect", "blue", "--tap", &tap, "--format", "json",
    ]);
    assert_eq!(connected["endpoint"], tap.as_str(), "{connected}");
    assert_eq!(connected["port"], tap.as_str(), "{connected}");
    d.must(&["network", "disconnect", "blue", &tap]);
    d.must(&["port", "publish", "blue", &c1.name, "8080:80"]);
    d.must(&["peer", "add", "192.0.2.99"]);
    assert!(
        c1.ping_until(common::nat::OUTSIDE, Duration::from_secs(5)),
        "no way out\n{}",
        d.log()
    );

    let listings: [(&[&str], &str); 8] = [
        (&["network", "ls"], "NETWORK ID"),
        (
            &["network", "inspect", "blue", "a-much-longer-network-name"],
            "NETWORK",
        ),
        (&["fdb", "show"], "NETWORK"),
        (&["fdb", "show", "blue"], "NETWORK"),
        (&["stats"], "PORT"),
        (&["peer", "ls"], "PEER"),
        (&["port", "ls"], "NETWORK"),
        (&["nat", "ls"], "PROTO"),
    ];
    for (args, header) in listings {
        let mut json_args = args.to_vec();
        json_args.extend(["--format", "json"]);
        let v = d.json(&json_args);
        assert!(v.is_array() || v.is_object(), "{args:?} --format json: {v}");
        let empty = v.as_array().is_some_and(|a| a.is_empty());
        assert!(!empty, "{args:?} listed nothing: the test set-up is wrong");

        let mut table_args = args.to_vec();
        table_args.extend(["--format", "table"]);
        let t = d.must(&table_args);
        assert!(t.starts_with(header), "{args:?} table:\n{t}");
        let rows: String = t
            .lines()
            .take_while(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        let cols = second_column(&rows);
        assert!(
            cols.windows(2).all(|w| w[0] == w[1]),
            "{args:?}: columns do not line up {cols:?}\n{t}"
        );
    }
    // Inspect's default stays Docker's JSON.
    assert!(d.json(&["network", "inspect", "blue"])[0]["IPAM"].is_object());
}
