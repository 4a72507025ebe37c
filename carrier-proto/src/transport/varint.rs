//! QUIC variable-length integers (RFC 9000 §16): the field encoding of transport frames.
//!
//! The two high bits of the first byte give the length (`00` = 1, `01` = 2, `10` = 4,
//! `11` = 8 bytes); the remaining 6, 14, 30 or 62 bits hold the value, big-endian.
//! Writers use the shortest form; readers accept any form, since the RFC allows a sender to
//! pad a value into a longer encoding (e.g. to fix a field's size before knowing its value).

use bytes::{BufMut, BytesMut};

/// The largest value a varint can carry: 2^62 − 1.
pub(crate) const MAX: u64 = (1 << 62) - 1;

/// Bytes the shortest encoding of `v` takes (1, 2, 4 or 8).
///
/// Values above [`MAX`] count as 8, the length [`write()`] uses after clamping them.
pub(crate) fn encoded_len(v: u64) -> usize {
    if v < 1 << 6 {
        1
    } else if v < 1 << 14 {
        2
    } else if v < 1 << 30 {
        4
    } else {
        8
    }
}

/// Appends the shortest encoding of `v` to `out`.
///
/// A value above [`MAX`] is a caller bug (packet numbers, offsets and delays stay far below
/// 2^62): debug builds assert, release builds write [`MAX`] rather than a corrupt prefix.
pub(crate) fn write(out: &mut BytesMut, v: u64) {
    debug_assert!(v <= MAX, "varint value {v} exceeds 2^62 - 1");
    let v = v.min(MAX);
    // The casts keep only bits that `encoded_len` has shown to be the value's.
    match encoded_len(v) {
        1 => out.put_u8(v as u8),
        2 => out.put_u16(0x4000 | v as u16),
        4 => out.put_u32(0x8000_0000 | v as u32),
        _ => out.put_u64(0xc000_0000_0000_0000 | v),
    }
}

/// Reads one varint from the front of `input` and advances it past the varint.
///
/// Returns `None`, leaving `input` untouched, if the encoding runs past the end. Non-minimal
/// encodings are accepted.
pub(crate) fn read(input: &mut &[u8]) -> Option<u64> {
    let first = *input.first()?;
    let (bytes, rest) = input.split_at_checked(1 << (first >> 6))?;
    let v = bytes
        .iter()
        .skip(1)
        .fold(u64::from(first & 0x3f), |v, &b| (v << 8) | u64::from(b));
    *input = rest;
    Some(v)
}

/// Reads `offset(v) length(v) data(length)` from the front of `input` (STREAM, CONTROL and
/// channel DATA frames) and advances past it. `Err(true)` if the input ends first,
/// `Err(false)` if the range would end beyond a varint (its end could not be written back).
pub(crate) fn read_range<'a>(input: &mut &'a [u8]) -> Result<(u64, &'a [u8]), bool> {
    let mut rest = *input;
    let offset = read(&mut rest).ok_or(true)?;
    let len = read(&mut rest).ok_or(true)?;
    let len = usize::try_from(len).map_err(|_| true)?;
    let (data, tail) = rest.split_at_checked(len).ok_or(true)?;
    if offset.checked_add(len as u64).is_none_or(|end| end > MAX) {
        return Err(false);
    }
    *input = tail;
    Ok((offset, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn encode(v: u64) -> Vec<u8> {
        let mut out = BytesMut::new();
        write(&mut out, v);
        out.to_vec()
    }

    #[test]
    fn rfc9000_appendix_a1_vectors() {
        let vectors: [(&[u8], u64); 5] = [
            (&[0x25], 37),
            (&[0x7b, 0xbd], 15293),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            (
                &[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c],
                151_288_809_941_952_652,
            ),
            // Non-minimal: 37 in two bytes. Readers must accept it.
            (&[0x40, 0x25], 37),
        ];
        for (bytes, value) in vectors {
            let mut input = bytes;
            assert_eq!(read(&mut input), Some(value), "{bytes:02x?}");
            assert!(input.is_empty());
        }
        // The writer produces the minimal forms (all vectors but the last).
        for (bytes, value) in &vectors[..4] {
            assert_eq!(encode(*value), *bytes);
        }
    }

    #[test]
    fn length_boundaries() {
        for (v, len) in [
            (0, 1),
            (63, 1),
            (64, 2),
            (16_383, 2),
            (16_384, 4),
            ((1 << 30) - 1, 4),
            (1 << 30, 8),
            (MAX, 8),
        ] {
            assert_eq!(encoded_len(v), len, "{v}");
            assert_eq!(encode(v).len(), len, "{v}");
        }
        assert_eq!(encode(MAX), [0xff; 8]);
    }

    #[test]
    fn truncated_input_is_none_and_not_consumed() {
        assert_eq!(read(&mut &[][..]), None);
        for bytes in [&[0x40][..], &[0x80, 1, 2], &[0xc0, 1, 2, 3, 4, 5, 6]] {
            let mut input = bytes;
            assert_eq!(read(&mut input), None);
            assert_eq!(input, bytes);
        }
    }

    proptest! {
        #[test]
        fn round_trip(v in 0..=MAX, tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut out = BytesMut::new();
            write(&mut out, v);
            prop_assert_eq!(out.len(), encoded_len(v));
            out.extend_from_slice(&tail);
            let mut input = &out[..];
            prop_assert_eq!(read(&mut input), Some(v));
            prop_assert_eq!(input, &tail[..]);
        }

        #[test]
        fn read_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..10)) {
            let mut input = &bytes[..];
            match read(&mut input) {
                Some(v) => {
                    prop_assert!(v <= MAX);
                    prop_assert_eq!(bytes.len() - input.len(), 1 << (bytes[0] >> 6));
                }
                None => prop_assert_eq!(input, &bytes[..]),
            }
        }
    }
}
