//! The `vswitch` command: `run` starts the daemon; every other command is a request to a
//! running daemon over its socket, printed as a table or as JSON. Every mistake ends in
//! one line on stderr that says what to fix, and a non-zero exit.

pub mod args;
pub mod capture;
pub mod client;
mod frame_text;
mod print;
pub mod reference;
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
    if !matches!(cli.command, Command::Run(_)) {
        // Best effort: without it a closed pipe is a panic message instead of silence.
        let _ = crate::port::sys::sigpipe::restore_default();
    }
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
            let log = daemon::logging::init();
            let socket_given = std::env::var_os("VSWITCH_SOCKET").is_some()
                || std::env::args().any(|a| a == "--socket" || a.starts_with("--socket="));
            daemon::run(
                RunOptions {
                    config: a.config,
                    state_dir: a.state_dir,
                    socket: socket_given.then_some(cli.socket),
                    workers: a.workers.map(usize::from),
                },
                log,
            )
            .map_err(|e| e.to_string())
        }
        Command::Network(n) => network(n, &req),
        Command::Fdb(FdbCommand::Show { network, format }) => {
            let v = req(Request::FdbShow { network })?;
            print::show(&v, format.format, print::fdb);
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
            print::show(&v, f.format, print::peers);
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
            print::show(&v, f.format, print::published);
            Ok(())
        }
        Command::Nat(NatCommand::Ls(f)) => {
            let v = req(Request::NatLs)?;
            print::show(&v, f.format, print::conns);
            Ok(())
        }
        Command::Capture(a) => capture::run(&socket, a),
        Command::Trace(a) => trace::run(&socket, a),
        Command::Lab(LabCommand::Demo) => crate::lab::demo::run().map_err(|e| e.to_string()),
        Command::Lab(LabCommand::Up { file, format }) => {
            let lab =
                crate::lab::build::Lab::build(&read_lab(&file)?).map_err(|e| e.to_string())?;
            match format.format {
                Format::Table => print!("{}", lab.describe()),
                Format::Json => print::json(&lab.describe_json()),
            }
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
        Command::Completions(a) => {
            reference::completions(a.shell, &mut std::io::stdout());
            Ok(())
        }
        Command::Stats(f) => {
            let v = req(Request::Stats)?;
            print::show(&v, f.format, print::stats);
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
                print::json(&v);
            } else {
                print::networks(&nets);
            }
        }
        NetworkCommand::Inspect { names, format } => {
            print::show(
                &req(Request::NetworkInspect { names })?,
                format,
                print::inspect,
            );
        }
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
            print::show(&v, a.format.format, print::connected);
        }
        NetworkCommand::Disconnect { network, endpoint } => {
            req(Request::NetworkDisconnect { network, endpoint })?;
        }
        NetworkCommand::Rm { names } => {
            let v = req(Request::NetworkRm { names })?;
            print::names(&v);
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
                print::names(&v);
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
