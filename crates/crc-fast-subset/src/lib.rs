//! The part of [crc-fast](https://crates.io/crates/crc-fast)'s API that
//! `aws-smithy-checksums` calls: [`Digest`] (`new`, `update`, `finalize`)
//! and [`checksum`], for the three CRCs S3 uses: CRC-32 (ISO-HDLC), CRC-32C
//! (iSCSI) and CRC-64/NVME.
//!
//! Why it exists: crc-fast picks its software lookup table by matching on
//! the algorithm at run time, so every binary that links the S3 client
//! carried its tables for every CRC it knows, about 650 KB of read-only data
//! that compresses poorly, in each of the seven S3 tasks on every platform
//! but macOS arm64 (where crc-fast linked no tables, and the S3 tasks came
//! out about 16 KB larger with this crate). The workspace patches crc-fast
//! with this crate.
//!
//! How: CRC-32 is `crc32fast` (carry-less multiplication on x86-64, the CRC
//! instructions on arm64), already in the tree for the transfer code.
//! CRC-32C and CRC-64/NVME are reflected CRCs computed eight bytes at a
//! time ("slicing-by-8"), with tables built in memory on first use rather
//! than stored in the binary.

use std::sync::OnceLock;

/// The algorithms this subset computes (crc-fast's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrcAlgorithm {
    /// CRC-32 as in zlib, Ethernet and S3's `CRC32` (crc-fast's name).
    Crc32IsoHdlc,
    /// CRC-32C (Castagnoli), S3's `CRC32C`.
    Crc32Iscsi,
    /// CRC-64/NVME, S3's `CRC64NVME`.
    Crc64Nvme,
}

/// A running checksum.
#[derive(Debug, Clone)]
pub struct Digest {
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    Crc32(crc32fast::Hasher),
    /// The register of a table-driven CRC (its table and current value,
    /// before the final inversion).
    Sliced(&'static Tables, u64),
}

impl Digest {
    pub fn new(algorithm: CrcAlgorithm) -> Self {
        let state = match algorithm {
            CrcAlgorithm::Crc32IsoHdlc => State::Crc32(crc32fast::Hasher::new()),
            CrcAlgorithm::Crc32Iscsi => State::Sliced(crc32c_tables(), u64::from(u32::MAX)),
            CrcAlgorithm::Crc64Nvme => State::Sliced(crc64nvme_tables(), u64::MAX),
        };
        Digest { state }
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Crc32(h) => h.update(data),
            State::Sliced(tables, crc) => *crc = tables.update(*crc, data),
        }
    }

    /// The checksum of everything given so far (CRC-32s in the low 32 bits).
    pub fn finalize(&self) -> u64 {
        match &self.state {
            State::Crc32(h) => u64::from(h.clone().finalize()),
            State::Sliced(tables, crc) => crc ^ tables.xor_out,
        }
    }
}

/// The checksum of `buf`.
pub fn checksum(algorithm: CrcAlgorithm, buf: &[u8]) -> u64 {
    let mut d = Digest::new(algorithm);
    d.update(buf);
    d.finalize()
}

/// Slicing-by-8 tables of a reflected CRC: `t[0]` is the CRC of each byte,
/// `t[k]` the same byte followed by `k` zero bytes.
#[derive(Debug)]
struct Tables {
    t: [[u64; 256]; 8],
    xor_out: u64,
}

impl Tables {
    /// `poly` is the reflected polynomial, in the low `width` bits.
    fn new(poly: u64, xor_out: u64) -> Tables {
        let mut t = [[0u64; 256]; 8];
        for (i, entry) in t[0].iter_mut().enumerate() {
            let mut c = i as u64;
            for _ in 0..8 {
                c = if c & 1 == 1 { (c >> 1) ^ poly } else { c >> 1 };
            }
            *entry = c;
        }
        for k in 1..8 {
            for i in 0..256 {
                let prev = t[k - 1][i];
                t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            }
        }
        Tables { t, xor_out }
    }

    /// The register after `data`. For a 32-bit CRC the register's high
    /// half stays zero, so the same eight-byte step serves both widths.
    fn update(&self, mut crc: u64, data: &[u8]) -> u64 {
        let mut chunks = data.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let x = crc ^ u64::from_le_bytes(word);
            crc = self.t[7][(x & 0xff) as usize]
                ^ self.t[6][((x >> 8) & 0xff) as usize]
                ^ self.t[5][((x >> 16) & 0xff) as usize]
                ^ self.t[4][((x >> 24) & 0xff) as usize]
                ^ self.t[3][((x >> 32) & 0xff) as usize]
                ^ self.t[2][((x >> 40) & 0xff) as usize]
                ^ self.t[1][((x >> 48) & 0xff) as usize]
                ^ self.t[0][(x >> 56) as usize];
        }
        for &b in chunks.remainder() {
            crc = self.t[0][((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8);
        }
        crc
    }
}

fn crc32c_tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| Tables::new(0x82F6_3B78, u64::from(u32::MAX)))
}

fn crc64nvme_tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| Tables::new(0x9A6C_9329_AC4B_C9B5, u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CRC catalogue's check values: the checksum of "123456789".
    #[test]
    fn check_values_of_the_crc_catalogue() {
        let check = b"123456789";
        assert_eq!(checksum(CrcAlgorithm::Crc32IsoHdlc, check), 0xCBF4_3926);
        assert_eq!(checksum(CrcAlgorithm::Crc32Iscsi, check), 0xE306_9283);
        assert_eq!(
            checksum(CrcAlgorithm::Crc64Nvme, check),
            0xAE8B_1486_0A79_9888
        );
    }

    /// Known answers from other sources: S3's own examples and RFC 3720.
    #[test]
    fn known_answers() {
        // RFC 3720 (iSCSI), B.4: 32 bytes of zeros, of ones, ascending.
        assert_eq!(checksum(CrcAlgorithm::Crc32Iscsi, &[0u8; 32]), 0x8A91_36AA);
        assert_eq!(
            checksum(CrcAlgorithm::Crc32Iscsi, &[0xffu8; 32]),
            0x62A8_AB43
        );
        let ascending: Vec<u8> = (0u8..32).collect();
        assert_eq!(checksum(CrcAlgorithm::Crc32Iscsi, &ascending), 0x46DD_794E);
        // The empty input.
        for a in [
            CrcAlgorithm::Crc32IsoHdlc,
            CrcAlgorithm::Crc32Iscsi,
            CrcAlgorithm::Crc64Nvme,
        ] {
            assert_eq!(checksum(a, b""), 0, "{a:?}");
        }
    }

    /// A bit-at-a-time reference: the definition, without tables.
    fn bitwise(poly: u64, xor_out: u64, init: u64, data: &[u8]) -> u64 {
        let mut crc = init;
        for &b in data {
            crc ^= u64::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ poly
                } else {
                    crc >> 1
                };
            }
        }
        crc ^ xor_out
    }

    /// Any split of the input into updates gives the checksum of the whole,
    /// and the sliced path agrees with the bitwise definition at every
    /// length and alignment.
    #[test]
    fn pieces_and_the_bitwise_definition_agree() {
        let data: Vec<u8> = (0u32..1000)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 999, 1000] {
            for start in [0, 1, 3] {
                let Some(piece) = data.get(start..len.max(start)) else {
                    continue;
                };
                let c = bitwise(0x82F6_3B78, 0xFFFF_FFFF, 0xFFFF_FFFF, piece);
                assert_eq!(checksum(CrcAlgorithm::Crc32Iscsi, piece), c);
                let c = bitwise(0x9A6C_9329_AC4B_C9B5, u64::MAX, u64::MAX, piece);
                assert_eq!(checksum(CrcAlgorithm::Crc64Nvme, piece), c);
                let c = bitwise(0xEDB8_8320, 0xFFFF_FFFF, 0xFFFF_FFFF, piece);
                assert_eq!(checksum(CrcAlgorithm::Crc32IsoHdlc, piece), c);
            }
        }
        for a in [
            CrcAlgorithm::Crc32IsoHdlc,
            CrcAlgorithm::Crc32Iscsi,
            CrcAlgorithm::Crc64Nvme,
        ] {
            let whole = checksum(a, &data);
            for split in [1, 5, 8, 13, 500] {
                let mut d = Digest::new(a);
                for part in data.chunks(split) {
                    d.update(part);
                }
                assert_eq!(d.finalize(), whole, "{a:?} in pieces of {split}");
                // finalize does not end the digest.
                assert_eq!(d.finalize(), whole);
            }
        }
    }
}
