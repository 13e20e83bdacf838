//! Branch filters, applied to a binary before it is compressed and undone
//! by the launcher after it is unpacked (`unfilter` in
//! `tasks/launcher/run.js`, which must stay the exact inverse).
//!
//! Machine code calls the same function from many places, each call with
//! a different relative offset. Rewritten as absolute targets, those calls
//! become the same bytes, which Brotli then finds again (the idea of xz's
//! BCJ filters):
//!
//! - `x86`: the rel32 of `call` (E8) and `jmp` (E9), when its top byte is
//!   00 or FF (a plausible offset), becomes the target's file offset,
//!   kept to 25 bits so that the result has the same property, and the
//!   scan steps over the operand either way: the decoder makes the same
//!   choices on the filtered bytes.
//! - `arm64`: the imm26 of every aligned `bl`, counted in instructions.
//!
//! Both are bijections, whatever the bytes are (data included).

/// The filter for a platform's binary (`None`: stored as built).
pub fn for_platform(platform: &str) -> Option<&'static str> {
    if platform.ends_with("-x64") {
        Some("x86")
    } else if platform.ends_with("-arm64") {
        Some("arm64")
    } else {
        None
    }
}

/// Applies `filter` to `data` (`decode`: undoes it).
pub fn apply(filter: &str, data: &mut [u8], decode: bool) {
    match filter {
        "x86" => x86(data, decode),
        "arm64" => arm64(data, decode),
        other => panic!("no filter {other}"),
    }
}

fn x86(data: &mut [u8], decode: bool) {
    let mut i = 0;
    while i + 5 <= data.len() {
        if !matches!(data[i], 0xE8 | 0xE9) {
            i += 1;
            continue;
        }
        // Opcode and operand are skipped together whether or not the
        // operand is rewritten: the bytes a decision reads are then never
        // changed by a later one, so the decoder sees what the encoder saw.
        if matches!(data[i + 4], 0x00 | 0xFF) {
            let value = u32::from_le_bytes(data[i + 1..i + 5].try_into().unwrap());
            // The offset is from the end of the instruction.
            let next = (i + 5) as u32;
            let moved = if decode {
                value.wrapping_sub(next)
            } else {
                value.wrapping_add(next)
            };
            // Sign-extended from bit 24: the top byte is 00 or FF again.
            let kept = (((moved << 7) as i32) >> 7) as u32;
            data[i + 1..i + 5].copy_from_slice(&kept.to_le_bytes());
        }
        i += 5;
    }
}

fn arm64(data: &mut [u8], decode: bool) {
    for (n, word) in data.chunks_exact_mut(4).enumerate() {
        let insn = u32::from_le_bytes(word.try_into().unwrap());
        if insn >> 26 == 0x25 {
            let imm = insn & 0x03FF_FFFF;
            let n = n as u32;
            let moved = if decode {
                imm.wrapping_sub(n)
            } else {
                imm.wrapping_add(n)
            };
            word.copy_from_slice(&(0x9400_0000 | (moved & 0x03FF_FFFF)).to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Plenty of opcodes and 00/FF bytes.
                match x % 7 {
                    0 => 0xE8,
                    1 => 0xE9,
                    2 => 0x00,
                    3 => 0xFF,
                    4 => 0x94,
                    _ => (x >> 8) as u8,
                }
            })
            .collect()
    }

    #[test]
    fn filters_are_undone_exactly() {
        for filter in ["x86", "arm64"] {
            for (len, seed) in [(0, 1), (3, 2), (5, 3), (4099, 4), (100_003, 5)] {
                let original = noise(len, seed);
                let mut data = original.clone();
                apply(filter, &mut data, false);
                if len > 1000 {
                    assert_ne!(data, original, "{filter} changed nothing");
                }
                apply(filter, &mut data, true);
                assert_eq!(data, original, "{filter}, {len} bytes");
            }
        }
    }

    #[test]
    fn calls_to_one_target_become_the_same_bytes() {
        // Two calls to offset 0x1000 from different places.
        let mut code = vec![0x90u8; 0x2000];
        for at in [0x100usize, 0x800] {
            code[at] = 0xE8;
            let rel = 0x1000i32 - (at as i32 + 5);
            code[at + 1..at + 5].copy_from_slice(&rel.to_le_bytes());
        }
        apply("x86", &mut code, false);
        assert_eq!(code[0x101..0x105], code[0x801..0x805]);
        assert_eq!(code[0x101..0x105], 0x1000u32.to_le_bytes());

        // bl to instruction 0x400 from instructions 0x10 and 0x200.
        let mut code = vec![0u8; 0x1000 * 4];
        for n in [0x10u32, 0x200] {
            let insn = 0x9400_0000u32 | ((0x400 - n) & 0x03FF_FFFF);
            code[n as usize * 4..n as usize * 4 + 4].copy_from_slice(&insn.to_le_bytes());
        }
        apply("arm64", &mut code, false);
        assert_eq!(code[0x40..0x44], code[0x800..0x804]);
    }
}
