//! The steering programs in eBPF, for the one hook that takes nothing else: a TAP
//! device's queue choice (`TUNSETSTEERINGEBPF`). Rather than write each program twice,
//! [`from_classic`] translates a classic program, the way the kernel itself runs
//! classic filters: A in R0, X in R7, the scratch words `M[0..16]` on the stack, and
//! the packet loads (`LD_ABS`, `LD_IND`) kept as they are, since eBPF socket filters
//! still have them, with the same meaning (big-endian, offsets from the frame's data,
//! a load past the end returns 0 from the program).
//!
//! The translation covers classic BPF except the ancillary loads (`SKF_AD_*`: the
//! kernel fields a classic program reads at magic offsets) and division by X (which
//! returns 0 from a classic program but goes on in eBPF); those are refused, as are
//! encodings classic BPF does not have. The kernel's verifier checks the result when it
//! is loaded: it also refuses what classic BPF's checker lets pass, unreachable
//! instructions (the steering programs have none). Conditional jumps become 32-bit
//! ones (`BPF_JMP32`, Linux 5.1), which compare as classic BPF does.

use libc::sock_filter;

use crate::port::sys::bpf::BpfInsn;

// Register roles.
const A: u8 = 0;
const CTX_IN: u8 = 1;
/// Where `LD_ABS` and `LD_IND` find the packet's context.
const CTX: u8 = 6;
const X: u8 = 7;
/// Keeps A while `LDX MSH` borrows R0 for its load.
const SAVED_A: u8 = 9;
const FP: u8 = 10;

// eBPF instruction classes and operations (the classic ones share their values).
const LD: u8 = 0x00;
const LDX: u8 = 0x01;
const ST: u8 = 0x02;
const STX: u8 = 0x03;
const ALU: u8 = 0x04;
const JMP: u8 = 0x05;
const RET: u8 = 0x06;
const MISC: u8 = 0x07;
const JMP32: u8 = 0x06;
const ALU64: u8 = 0x07;
const W: u8 = 0x00;
const B: u8 = 0x10;
const DW: u8 = 0x18;
const IMM: u8 = 0x00;
const ABS: u8 = 0x20;
const IND: u8 = 0x40;
const MEM: u8 = 0x60;
const LEN: u8 = 0x80;
const MSH: u8 = 0xa0;
const SRC_X: u8 = 0x08;
const AND: u8 = 0x50;
const LSH: u8 = 0x60;
const DIV: u8 = 0x30;
const MOD: u8 = 0x90;
const XOR: u8 = 0xa0;
const MOV: u8 = 0xb0;
const JA: u8 = 0x00;
const JEQ: u8 = 0x10;
const JGT: u8 = 0x20;
const JGE: u8 = 0x30;
const JSET: u8 = 0x40;
const EXIT: u8 = 0x90;
const NEG: u8 = 0x80;
const TAX: u8 = 0x00;
const TXA: u8 = 0x80;
const RET_K: u8 = 0x00;
const RET_X: u8 = 0x08;
const RET_A: u8 = 0x10;
/// Where the classic ancillary loads start (`SKF_AD_OFF`); the network- and link-
/// relative offsets below it are plain packet loads.
const ANCILLARY: i32 = -0x1000;
/// `M[k]` is the stack word at `FP + slot(k)`.
const SCRATCH_WORDS: i16 = 16;

/// A classic instruction with no eBPF translation here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("classic BPF instruction {pc} ({code:#06x}, k {k:#x}) has no eBPF translation here")]
pub struct Untranslatable {
    pub pc: usize,
    pub code: u16,
    pub k: u32,
}

/// An instruction, or a jump to a classic instruction whose eBPF position is not
/// known until every instruction is translated.
enum Out {
    Insn(BpfInsn),
    Jump { insn: BpfInsn, to: usize },
}

fn raw(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    // `struct bpf_insn`'s two 4-bit register fields, in the order a C compiler lays out
    // bitfields on this target.
    let regs = if cfg!(target_endian = "big") {
        (dst << 4) | src
    } else {
        dst | (src << 4)
    };
    BpfInsn {
        code,
        regs,
        off,
        imm,
    }
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Out {
    Out::Insn(raw(code, dst, src, off, imm))
}

/// A jump comparing A with `imm` or X (`src`), or an unconditional one.
fn jump(code: u8, src: u8, imm: i32, to: usize) -> Out {
    Out::Jump {
        insn: raw(code, A, src, 0, imm),
        to,
    }
}

/// The longest classic program (`BPF_MAXINSNS`); translated, its jumps still fit
/// eBPF's 16-bit offsets (an instruction becomes at most six).
const MAX_CLASSIC: usize = 4096;

/// `classic` as an eBPF program that returns what it returns.
pub fn from_classic(classic: &[sock_filter]) -> Result<Vec<BpfInsn>, Untranslatable> {
    if classic.len() > MAX_CLASSIC {
        let last = classic[MAX_CLASSIC];
        return Err(Untranslatable {
            pc: MAX_CLASSIC,
            code: last.code,
            k: last.k,
        });
    }
    // The prologue: the context where packet loads want it, A and X zero, M[] zero.
    let mut out = vec![
        insn(ALU64 | MOV | SRC_X, CTX, CTX_IN, 0, 0),
        insn(ALU | MOV, A, 0, 0, 0),
        insn(ALU | MOV, X, 0, 0, 0),
    ];
    for pair in 0..SCRATCH_WORDS / 2 {
        out.push(insn(ST | MEM | DW, FP, 0, -8 * (pair + 1), 0));
    }
    let mut starts = Vec::with_capacity(classic.len());
    for (pc, i) in classic.iter().enumerate() {
        starts.push(out.len());
        translate(pc, i, classic.len(), &mut out)?;
    }
    let mut program = Vec::with_capacity(out.len());
    for (at, o) in out.into_iter().enumerate() {
        program.push(match o {
            Out::Insn(i) => i,
            Out::Jump { mut insn, to } => {
                let off = starts[to] as isize - (at as isize + 1);
                insn.off = i16::try_from(off).expect("at most 6 x 4096 instructions");
                insn
            }
        });
    }
    Ok(program)
}

fn translate(
    pc: usize,
    i: &sock_filter,
    len: usize,
    out: &mut Vec<Out>,
) -> Result<(), Untranslatable> {
    let refuse = || Untranslatable {
        pc,
        code: i.code,
        k: i.k,
    };
    let code = u8::try_from(i.code).map_err(|_| refuse())?;
    let k = i.k as i32;
    let (class, mode, size, op) = (code & 0x07, code & 0xe0, code & 0x18, code & 0xf0);
    // With X as the operand, eBPF wants the immediate zero.
    let (src, imm) = if code & SRC_X != 0 { (X, 0) } else { (0, k) };
    let slot = || -> Result<i16, Untranslatable> {
        let k = i16::try_from(i.k).ok().filter(|k| *k < SCRATCH_WORDS);
        k.map(|k| 4 * (k - SCRATCH_WORDS)).ok_or_else(refuse)
    };
    // A jump target: a classic instruction of this program.
    let target = |skip: u32| -> Result<usize, Untranslatable> {
        let to = pc + 1 + skip as usize;
        if to < len { Ok(to) } else { Err(refuse()) }
    };
    // Classic loads are words, halves or bytes, and only packet loads are not words.
    let packet_load = (class == LD && matches!(mode, ABS | IND)) || mode == MSH;
    if matches!(class, LD | LDX) && (size == DW || (!packet_load && size != W)) {
        return Err(refuse());
    }
    match class {
        LD => match mode {
            ABS if (ANCILLARY..0).contains(&k) => return Err(refuse()),
            ABS => out.push(insn(LD | ABS | size, 0, 0, 0, k)),
            IND => out.push(insn(LD | IND | size, 0, X, 0, k)),
            IMM => out.push(insn(ALU | MOV, A, 0, 0, k)),
            MEM => out.push(insn(LDX | MEM | W, A, FP, slot()?, 0)),
            // `__sk_buff.len`, the first word of the context.
            LEN => out.push(insn(LDX | MEM | W, A, CTX, 0, 0)),
            _ => return Err(refuse()),
        },
        LDX => match mode {
            IMM => out.push(insn(ALU | MOV, X, 0, 0, k)),
            MEM => out.push(insn(LDX | MEM | W, X, FP, slot()?, 0)),
            LEN => out.push(insn(LDX | MEM | W, X, CTX, 0, 0)),
            // X = 4 * (P[k] & 0xf): the IPv4 header's length.
            MSH if !(ANCILLARY..0).contains(&k) => out.extend([
                insn(ALU64 | MOV | SRC_X, SAVED_A, A, 0, 0),
                insn(LD | ABS | B, 0, 0, 0, k),
                insn(ALU | AND, A, 0, 0, 0xf),
                insn(ALU | LSH, A, 0, 0, 2),
                insn(ALU | MOV | SRC_X, X, A, 0, 0),
                insn(ALU64 | MOV | SRC_X, A, SAVED_A, 0, 0),
            ]),
            _ => return Err(refuse()),
        },
        ST => out.push(insn(STX | MEM | W, FP, A, slot()?, 0)),
        STX => out.push(insn(STX | MEM | W, FP, X, slot()?, 0)),
        // Classic BPF's operations end at XOR; eBPF's beyond it are no classic ones.
        ALU if op > XOR => return Err(refuse()),
        ALU if op == NEG => out.push(insn(ALU | NEG, A, 0, 0, 0)),
        ALU if matches!(op, DIV | MOD) && (src == X || k == 0) => return Err(refuse()),
        ALU => out.push(insn(code, A, src, 0, imm)),
        JMP if op == JA => out.push(jump(JMP | JA, 0, 0, target(i.k)?)),
        JMP if !matches!(op, JEQ | JGT | JGE | JSET) => return Err(refuse()),
        JMP => {
            let (yes, no) = (target(i.jt.into())?, target(i.jf.into())?);
            if yes == no {
                out.push(jump(JMP | JA, 0, 0, yes));
            } else {
                out.push(jump(JMP32 | op | (code & SRC_X), src, imm, yes));
                if no != pc + 1 {
                    out.push(jump(JMP | JA, 0, 0, no));
                }
            }
        }
        RET => {
            match code & 0x18 {
                RET_K => out.push(insn(ALU | MOV, A, 0, 0, k)),
                RET_A => {}
                RET_X => out.push(insn(ALU | MOV | SRC_X, A, X, 0, 0)),
                _ => return Err(refuse()),
            }
            out.push(insn(JMP | EXIT, 0, 0, 0, 0));
        }
        MISC if op == TXA => out.push(insn(ALU | MOV | SRC_X, A, X, 0, 0)),
        MISC if op == TAX => out.push(insn(ALU | MOV | SRC_X, X, A, 0, 0)),
        _ => return Err(refuse()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::steer::{flow_lanes, nat_replies, tap_lanes, underlay_lanes};

    /// The ancillary loads are refused where they are: the fanout programs read the
    /// protocol from the kernel's metadata first thing.
    #[test]
    fn ancillary_loads_are_refused() {
        for program in [flow_lanes(), nat_replies(&(40000..=40099))] {
            let refused = from_classic(&program).expect_err("an ancillary load");
            assert_eq!(refused.pc, 0);
        }
    }

    /// Every jump of a translated program lands inside it, and it ends in `exit`: what
    /// the verifier checks first (the port tests load and run them for real).
    #[test]
    fn translated_jumps_land_inside() {
        for program in [tap_lanes(), underlay_lanes(4)] {
            let insns = from_classic(&program).expect("translate");
            for (at, i) in insns.iter().enumerate() {
                let class = i.code & 0x07;
                if (class == JMP || class == JMP32) && i.code != JMP | EXIT {
                    let to = at as isize + 1 + isize::from(i.off);
                    assert!((0..insns.len() as isize).contains(&to), "jump at {at}");
                }
            }
            assert_eq!(insns.last().map(|i| i.code), Some(JMP | EXIT));
        }
    }
}
