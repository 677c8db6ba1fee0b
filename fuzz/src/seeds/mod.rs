//! The seed corpus: real frames, datagrams, requests and config files, in the input
//! layout of each harness, so that fuzzing starts from traffic the switch sees rather
//! than from nothing. `fuzz/corpus/<target>/` holds what [`write`] makes; regenerate it
//! with `cargo test -p vswitch --test fuzz_corpus -- --ignored write_seed_corpus`.

mod control;
pub mod frames;
mod packets;
mod pipeline;

use std::path::Path;

/// One corpus file.
#[derive(Debug, Clone)]
pub struct Seed {
    pub target: &'static str,
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Every seed of every target.
pub fn all() -> Vec<Seed> {
    let mut all = Vec::new();
    let mut add = |target: &'static str, seeds: Vec<(String, Vec<u8>)>| {
        for (name, bytes) in seeds {
            all.push(Seed {
                target,
                name,
                bytes,
            });
        }
    };
    add("pipeline", pipeline::seeds());
    add("vxlan_decap", packets::vxlan_decap());
    add("offload", packets::offload());
    add("nat_icmp", packets::nat_icmp());
    add("l3", packets::l3());
    add("control", control::seeds());
    all
}

/// Writes every seed to `root/<target>/<name>`, replacing the directories' contents.
pub fn write(root: &Path) -> std::io::Result<usize> {
    let seeds = all();
    for (target, _) in crate::harness::TARGETS {
        let dir = root.join(target);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
    }
    for s in &seeds {
        std::fs::write(root.join(s.target).join(&s.name), &s.bytes)?;
    }
    Ok(seeds.len())
}
