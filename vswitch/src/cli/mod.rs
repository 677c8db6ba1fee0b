//! The `vswitch` command: `run` starts the daemon; every other command is a request to a
//! running daemon over its socket, printed as a table or as JSON. Every mistake ends in
//! one line on stderr that says what to fix, and a non-zero exit.

pub mod args;
pub mod capture;
pub mod client;
mod frame_text;
pub mod table;
pub mod trace;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use serde_json::Value;

use args::{
    Cli, Command, CreateArgs, DriverArg, FdbCommand, Format, LabCommand, NatCommand,
    NetworkCommand, PeerCommand, PortCommand,
};
use client::call;

use crate::control::api::{
    Attach, FdbTarget, NetworkConnect, NetworkCreate, NetworkSummary, Request,
};
use crate::control::state::Driver;
use crate::daemon::{self, RunOptions};

/// Exit status for a refused or failed command.
const EXIT_FAILED: u8 = 1;
/// Exit status for a command line that does not parse.
const EXIT_USAGE: u8 = 2;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return usage_error(e),
    };
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("vswitch: {msg}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Help and version print in full; a real mistake prints one line.
fn usage_error(e: clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(EXIT_USAGE)
        }
        _ => {
            let text = e.render().to_string();
            // clap's message: "error: ...", maybe a list on the next lines (missing
            // arguments), a "tip:", then usage. Keep the message, the list and the tip.
            let mut msg = Vec::new();
            let mut tip = String::new();
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                if line.starts_with("Usage:") || line.starts_with("For more information") {
                    break;
                }
                match line.strip_prefix("tip: ") {
                    Some(t) => tip = format!("; {t}"),
                    None => msg.push(line.strip_prefix("error: ").unwrap_or(line)),
                }
            }
            let first = msg.join(" ");
            eprintln!("vswitch: {first}{tip} (see --help)");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn dispatch(cli: Cli) -> Result<(), String> {
    let socket = cli.socket.clone();
    let req = |r: Request| call(&socket, &r).map_err(|e| e.to_string());
    match cli.command {
        Command::Run(a) => {
            init_logging();
            let socket_given = std::env::var_os("VSWITCH_SOCKET").is_some()
                || std::env::args().any(|a| a == "--socket" || a.starts_with("--socket="));
            daemon::run(RunOptions {
                config: a.config,
                state_dir: a.state_dir,
                socket: socket_given.then_some(cli.socket),
            })
            .map_err(|e| e.to_string())
        }
        Command::Network(n) => network(n, &req),
        Command::Fdb(FdbCommand::Show { network, format }) => {
            let v = req(Request::FdbShow { network })?;
            print_fdb(&v, format.format);
            Ok(())
        }
        Command::Fdb(FdbCommand::Add {
            network,
            mac,
            target,
        }) => {
            let target = match (target.port, target.vtep) {
                (Some(p), _) => FdbTarget::Port(p),
                (_, Some(ip)) => FdbTarget::Vtep(ip),
                _ => return Err("say where the MAC is: --port PORT or --vtep IP".into()),
            };
            req(Request::FdbAdd {
                network,
                mac,
                target,
            })
            .map(|_| ())
        }
        Command::Fdb(FdbCommand::Del { network, mac }) => {
            req(Request::FdbDel { network, mac }).map(|_| ())
        }
        Command::Peer(PeerCommand::Add { ip, vnis }) => {
            req(Request::PeerAdd { ip, vnis }).map(|_| ())
        }
        Command::Peer(PeerCommand::Rm { ip }) => req(Request::PeerRm { ip }).map(|_| ()),
        Command::Peer(PeerCommand::Ls(f)) => {
            let v = req(Request::PeerLs)?;
            match f.format {
                Format::Json => print_json(&v),
                Format::Table => print_peers(&v),
            }
            Ok(())
        }
        Command::Port(PortCommand::Publish {
            network,
            endpoint,
            spec,
        }) => {
            let v = req(Request::PortPublish {
                network,
                endpoint,
                spec,
            })?;
            println!("{}", v.as_str().unwrap_or_default());
            Ok(())
        }
        Command::Port(PortCommand::Unpublish {
            network,
            endpoint,
            spec,
        }) => req(Request::PortUnpublish {
            network,
            endpoint,
            spec,
        })
        .map(|_| ()),
        Command::Port(PortCommand::Ls(f)) => {
            let v = req(Request::PortLs)?;
            match f.format {
                Format::Json => print_json(&v),
                Format::Table => print_rows(
                    &v,
                    &[
                        "network",
                        "endpoint",
                        "proto",
                        "host_ip",
                        "host_port",
                        "target",
                    ],
                ),
            }
            Ok(())
        }
        Command::Nat(NatCommand::Ls(f)) => {
            let v = req(Request::NatLs)?;
            match f.format {
                Format::Json => print_json(&v),
                Format::Table => print_conns(&v),
            }
            Ok(())
        }
        Command::Capture(a) => capture::run(&socket, a),
        Command::Trace(a) => trace::run(&socket, a),
        Command::Lab(LabCommand::Demo) => crate::lab::demo::run().map_err(|e| e.to_string()),
        Command::Lab(LabCommand::Up { file }) => {
            let lab =
                crate::lab::build::Lab::build(&read_lab(&file)?).map_err(|e| e.to_string())?;
            print!("{}", lab.describe());
            lab.keep();
            Ok(())
        }
        Command::Lab(LabCommand::Down { file }) => {
            let removed = crate::lab::build::down(&read_lab(&file)?).map_err(|e| e.to_string())?;
            println!(
                "removed {} namespaces: {}",
                removed.len(),
                removed.join(" ")
            );
            Ok(())
        }
        Command::Stats(f) => {
            let v = req(Request::Stats)?;
            match f.format {
                Format::Json => print_json(&v),
                Format::Table => print_stats(&v),
            }
            Ok(())
        }
    }
}

fn network(
    cmd: NetworkCommand,
    req: &dyn Fn(Request) -> Result<Value, String>,
) -> Result<(), String> {
    match cmd {
        NetworkCommand::Create(a) => {
            let id = req(Request::NetworkCreate(create_request(a)))?;
            println!("{}", id.as_str().unwrap_or_default());
        }
        NetworkCommand::Ls(a) => {
            let v = req(Request::NetworkLs)?;
            let nets: Vec<NetworkSummary> =
                serde_json::from_value(v.clone()).map_err(|e| format!("unexpected answer: {e}"))?;
            if a.quiet {
                nets.iter()
                    .for_each(|n| println!("{}", &n.id[..12.min(n.id.len())]));
            } else if a.format.format == Format::Json {
                print_json(&v);
            } else {
                print_networks(&nets);
            }
        }
        NetworkCommand::Inspect { names } => print_json(&req(Request::NetworkInspect { names })?),
        NetworkCommand::Connect(a) => {
            let attach = match (a.attach.netns, a.attach.tap, a.attach.iface) {
                (Some(ns), _, _) => Attach::Netns(ns),
                (_, Some(t), _) => Attach::Tap(t),
                (_, _, Some(i)) => Attach::Iface(i),
                _ => {
                    return Err(
                        "say what to connect: --netns NS, --tap IFNAME or --iface IFNAME".into(),
                    );
                }
            };
            let v = req(Request::NetworkConnect(NetworkConnect {
                network: a.network,
                attach,
                name: a.name,
                ip: a.ip,
                mac: a.mac,
                ifname: a.ifname,
                aliases: a.aliases,
            }))?;
            let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
            println!(
                "{} port={} mac={} ipv4={}",
                s("endpoint"),
                s("port"),
                s("mac"),
                s("ipv4")
            );
        }
        NetworkCommand::Disconnect { network, endpoint } => {
            req(Request::NetworkDisconnect { network, endpoint })?;
        }
        NetworkCommand::Rm { names } => {
            let v = req(Request::NetworkRm { names })?;
            print_names(&v);
        }
        NetworkCommand::Prune { force } => {
            if !force
                && !confirm("This removes every network without endpoints. Are you sure? [y/N] ")?
            {
                return Ok(());
            }
            let v = req(Request::NetworkPrune)?;
            if v.as_array().is_some_and(|a| !a.is_empty()) {
                println!("Deleted Networks:");
                print_names(&v);
            }
        }
    }
    Ok(())
}

fn create_request(a: CreateArgs) -> NetworkCreate {
    NetworkCreate {
        name: a.name,
        driver: match a.driver {
            DriverArg::Bridge => Driver::Bridge,
            DriverArg::Overlay => Driver::Overlay,
        },
        vni: a.vni,
        subnet: a.subnet,
        gateway: a.gateway,
        ip_range: a.ip_range,
        aux_addresses: a.aux_addresses.into_iter().collect(),
        mtu: a.mtu,
        internal: a.internal,
        labels: a.labels.into_iter().collect(),
        route_to: a.route_to,
    }
}

fn read_lab(path: &std::path::Path) -> Result<crate::lab::topology::LabFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    crate::lab::topology::LabFile::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn confirm(question: &str) -> Result<bool, String> {
    if !std::io::stdin().is_terminal() {
        return Err("prune needs confirmation: pass --force when not at a terminal".into());
    }
    eprint!("{question}");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| e.to_string())?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn print_names(v: &Value) {
    for n in v.as_array().into_iter().flatten() {
        println!("{}", n.as_str().unwrap_or_default());
    }
}

fn print_networks(nets: &[NetworkSummary]) {
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

/// A table of the named fields of each object of a JSON array, headed by their names.
fn print_rows(v: &Value, fields: &[&str]) {
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

fn print_conns(v: &Value) {
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

fn print_peers(v: &Value) {
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

fn print_fdb(v: &Value, format: Format) {
    if format == Format::Json {
        return print_json(v);
    }
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

fn print_stats(v: &Value) {
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
        "\nFDB: {} entries ({} static, limit {}); learned {}, moved {}, expired {}, refused {}",
        n(f, "entries"),
        n(f, "static_entries"),
        n(f, "max_entries"),
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

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
