//! How answers are printed: `--format json` prints the daemon's answer as it is (pretty
//! JSON), `--format table` a table (see `table.rs`) or a short line per record.

use serde_json::Value;

use super::args::Format;
use super::table;
use crate::control::api::NetworkSummary;

/// Prints `v` as JSON, or with `table` when the format is table.
pub fn show(v: &Value, format: Format, table: fn(&Value)) {
    match format {
        Format::Json => json(v),
        Format::Table => table(v),
    }
}

pub fn json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub fn names(v: &Value) {
    for n in v.as_array().into_iter().flatten() {
        println!("{}", n.as_str().unwrap_or_default());
    }
}

pub fn networks(nets: &[NetworkSummary]) {
    let rows: Vec<Vec<String>> = nets
        .iter()
        .map(|n| {
            vec![
                n.id.chars().take(12).collect(),
                n.name.clone(),
                n.driver.to_string(),
                n.vni.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
                n.subnet.to_string(),
                n.gateway.to_string(),
                n.mtu.to_string(),
                if n.internal { "yes" } else { "no" }.into(),
                n.endpoints.to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &[
                "NETWORK ID",
                "NAME",
                "DRIVER",
                "VNI",
                "SUBNET",
                "GATEWAY",
                "MTU",
                "INTERNAL",
                "ENDPOINTS"
            ],
            &rows
        )
    );
}

/// `port ls`.
pub fn published(v: &Value) {
    rows(
        v,
        &[
            "network",
            "endpoint",
            "proto",
            "host_ip",
            "host_port",
            "target",
        ],
    );
}

/// `network connect`: what the endpoint got, on one line.
pub fn connected(v: &Value) {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
    println!(
        "{} port={} mac={} ipv4={}",
        s("endpoint"),
        s("port"),
        s("mac"),
        s("ipv4")
    );
}

/// `network inspect --format table`: one row per endpoint of each network (a network
/// without endpoints gets one row of dashes, so it is still listed).
pub fn inspect(v: &Value) {
    let s = |x: &Value| match x {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Null => "-".into(),
        Value::String(_) => "-".into(),
        other => other.to_string(),
    };
    let mut out = Vec::new();
    for net in v.as_array().into_iter().flatten() {
        let subnet = s(&net["IPAM"]["Config"][0]["Subnet"]);
        let eps = net["Endpoints"].as_object().filter(|m| !m.is_empty());
        let dash = || "-".to_string();
        match eps {
            None => out.push(vec![
                s(&net["Name"]),
                subnet.clone(),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
            ]),
            Some(eps) => {
                for (name, e) in eps {
                    out.push(vec![
                        s(&net["Name"]),
                        subnet.clone(),
                        name.clone(),
                        s(&e["Kind"]),
                        s(&e["Port"]),
                        s(&e["MacAddress"]),
                        s(&e["IPv4Address"]),
                        s(&e["State"]),
                    ]);
                }
            }
        }
    }
    print!(
        "{}",
        table::render(
            &[
                "NETWORK", "SUBNET", "ENDPOINT", "KIND", "PORT", "MAC", "IPV4", "STATE"
            ],
            &out
        )
    );
}

/// A table of the named fields of each object of a JSON array, headed by their names.
pub fn rows(v: &Value, fields: &[&str]) {
    let cell = |x: &Value| match x {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let rows: Vec<Vec<String>> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| fields.iter().map(|f| cell(&r[*f])).collect())
        .collect();
    let headers: Vec<String> = fields
        .iter()
        .map(|f| f.to_uppercase().replace('_', " "))
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    print!("{}", table::render(&headers, &rows));
}

pub fn conns(v: &Value) {
    let tuple = |t: &Value| {
        format!(
            "{} -> {}",
            t["src"].as_str().unwrap_or("?"),
            t["dst"].as_str().unwrap_or("?")
        )
    };
    let rows: Vec<Vec<String>> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            vec![
                c["proto"].as_str().unwrap_or("?").to_string(),
                c["kind"].as_str().unwrap_or("?").to_string(),
                tuple(&c["original"]),
                tuple(&c["translated"]),
                c["state"].as_str().unwrap_or("?").to_string(),
                format!("{}s", c["age"]),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &["PROTO", "KIND", "ORIGINAL", "TRANSLATED", "STATE", "AGE"],
            &rows
        )
    );
}

pub fn peers(v: &Value) {
    let rows: Vec<Vec<String>> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let vnis = match &p["vnis"] {
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.as_str().unwrap_or_default().to_string(),
            };
            vec![p["ip"].as_str().unwrap_or_default().to_string(), vnis]
        })
        .collect();
    print!("{}", table::render(&["PEER", "VNIS"], &rows));
}

pub fn fdb(v: &Value) {
    let s = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let rows: Vec<Vec<String>> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let vtep = s(e, "vtep");
            vec![
                s(e, "network"),
                s(e, "mac"),
                if vtep.is_empty() {
                    s(e, "port")
                } else {
                    format!("vtep {vtep}")
                },
                if e["static"].as_bool() == Some(true) {
                    "static"
                } else {
                    "learned"
                }
                .into(),
                e["age_secs"]
                    .as_u64()
                    .map(|a| format!("{a}s"))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(&["NETWORK", "MAC", "WHERE", "TYPE", "AGE"], &rows)
    );
}

pub fn stats(v: &Value) {
    let n = |e: &Value, k: &str| e.get(k).and_then(Value::as_u64).unwrap_or(0).to_string();
    let s = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let rows: Vec<Vec<String>> = v["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let drops = p["drops"]
                .as_object()
                .map(|d| {
                    d.iter()
                        .map(|(k, c)| format!("{k}={c}"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "-".into());
            vec![
                n(p, "port"),
                s(p, "network"),
                s(p, "endpoint"),
                n(p, "rx_packets"),
                n(p, "rx_bytes"),
                n(p, "tx_packets"),
                n(p, "tx_bytes"),
                drops,
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &[
                "PORT", "NETWORK", "ENDPOINT", "RX PKTS", "RX BYTES", "TX PKTS", "TX BYTES",
                "DROPS"
            ],
            &rows
        )
    );
    let f = &v["fdb"];
    println!(
        "\nFDB: {} entries ({} static, limit {}, aging {}s); learned {}, moved {}, expired {}, refused {}",
        n(f, "entries"),
        n(f, "static_entries"),
        n(f, "max_entries"),
        n(f, "aging_secs"),
        n(f, "learned"),
        n(f, "moved"),
        n(f, "expired"),
        n(f, "refused")
    );
    println!(
        "Ports lost (interface deleted under the switch): {}",
        n(v, "ports_lost")
    );
}
