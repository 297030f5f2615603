//! Reading `.safetensors` files into host arrays ([`NpyArray`]), and the canonical (byte-
//! reproducible) form of a safetensors buffer.

use super::npy::{NpyArray, NpyData};
use crate::error::{NsgfError, Result};
use safetensors::{Dtype, SafeTensors};
use serde::ser::{SerializeMap, Serializer};
use std::collections::BTreeMap;
use std::path::Path;

/// Reads every tensor of a `.safetensors` file (dtypes F32, F64, U8, I64, I32) by name.
pub fn read_safetensors(path: impl AsRef<Path>) -> Result<BTreeMap<String, NpyArray>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| NsgfError::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| NsgfError::format(path, format!("not a valid safetensors file: {e}")))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let raw = view.data();
        let data = match view.dtype() {
            Dtype::F32 => NpyData::F32(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            Dtype::F64 => NpyData::F64(
                raw.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
            ),
            Dtype::U8 => NpyData::U8(raw.to_vec()),
            Dtype::I64 => NpyData::I64(
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
            ),
            Dtype::I32 => NpyData::I64(
                raw.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                    .collect(),
            ),
            other => {
                return Err(NsgfError::format(
                    path,
                    format!(
                        "tensor `{name}` has element type {other:?}; supported: F32, F64, U8, \
                         I32, I64"
                    ),
                ))
            }
        };
        out.insert(
            name.clone(),
            NpyArray {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}

/// Rewrites a safetensors buffer so that equal content gives equal bytes.
///
/// `safetensors::serialize` (0.7) orders the tensors deterministically (descending dtype
/// alignment, then name) but writes the `__metadata__` map in the iteration order of a
/// `HashMap`, which changes from run to run (burn's store always adds `format`, `producer` and
/// `version`). The header is rewritten with the metadata keys sorted and the tensor entries in
/// data order (ties, possible only between empty tensors, broken as `serialize` does: descending
/// dtype, then name), each entry as `serialize` writes it, padded with spaces to a multiple of 8
/// bytes; the tensor data are copied unchanged (their offsets are relative to the data start).
pub fn canonical_safetensors(bytes: &[u8]) -> Result<Vec<u8>> {
    let bad =
        |e: &dyn std::fmt::Display| NsgfError::Other(format!("invalid safetensors buffer: {e}"));
    let (n, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| bad(&e))?;
    let mut names = metadata.offset_keys();
    let info = |name: &str| {
        metadata
            .info(name)
            .expect("offset_keys lists known tensors")
    };
    names.sort_by(|a, b| {
        let (ia, ib) = (info(a), info(b));
        ia.data_offsets
            .cmp(&ib.data_offsets)
            .then(ib.dtype.cmp(&ia.dtype))
            .then(a.cmp(b))
    });
    let mut header = Vec::with_capacity(n);
    {
        let mut ser = serde_json::Serializer::new(&mut header);
        let mut map = ser.serialize_map(None).map_err(|e| bad(&e))?;
        if let Some(meta) = metadata.metadata() {
            let sorted: BTreeMap<&String, &String> = meta.iter().collect();
            map.serialize_entry("__metadata__", &sorted)
                .map_err(|e| bad(&e))?;
        }
        for name in &names {
            map.serialize_entry(name, info(name)).map_err(|e| bad(&e))?;
        }
        map.end().map_err(|e| bad(&e))?;
    }
    header.resize(header.len().next_multiple_of(8), b' ');
    let data = &bytes[8 + n..];
    let mut out = Vec::with_capacity(8 + header.len() + data.len());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;
    use std::collections::HashMap;

    fn serialize_with(meta: &[(&str, &str)]) -> Vec<u8> {
        let a: Vec<u8> = [1.0f32, 2.0, 3.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let b: Vec<u8> = [4.0f64, 5.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let c = vec![7u8, 8, 9, 10, 11];
        let views = vec![
            ("z.a", TensorView::new(Dtype::F32, vec![3], &a).unwrap()),
            ("b", TensorView::new(Dtype::F64, vec![2, 1], &b).unwrap()),
            ("c", TensorView::new(Dtype::U8, vec![5], &c).unwrap()),
            ("e1", TensorView::new(Dtype::F32, vec![0], &[]).unwrap()),
            ("e0", TensorView::new(Dtype::F32, vec![0, 2], &[]).unwrap()),
        ];
        // A fresh HashMap (fresh hash seed) for every call, as the checkpoint code gets.
        let meta: HashMap<String, String> = meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        safetensors::serialize(views, Some(meta)).unwrap()
    }

    #[test]
    fn canonical_form_is_byte_reproducible_and_lossless() {
        let keys: Vec<(String, String)> = (0..12)
            .map(|i| (format!("key{i:02}"), format!("value {i}")))
            .collect();
        let meta: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        let want = canonical_safetensors(&serialize_with(&meta)).unwrap();
        for _ in 0..8 {
            let raw = serialize_with(&meta);
            let canon = canonical_safetensors(&raw).unwrap();
            assert!(
                canon == want,
                "canonical bytes differ between two serialisations"
            );
            // Same tensors, same metadata as the raw buffer.
            let (r, c) = (
                SafeTensors::deserialize(&raw).unwrap(),
                SafeTensors::deserialize(&canon).unwrap(),
            );
            let mut names = r.names();
            names.sort();
            let mut cnames = c.names();
            cnames.sort();
            assert_eq!(names, cnames);
            for name in names {
                assert_eq!(r.tensor(name).unwrap(), c.tensor(name).unwrap(), "{name}");
            }
            let (_, rm) = SafeTensors::read_metadata(&raw).unwrap();
            let (_, cm) = SafeTensors::read_metadata(&canon).unwrap();
            assert_eq!(rm.metadata(), cm.metadata());
        }
        // Idempotent, 8-byte aligned, metadata keys sorted.
        assert!(canonical_safetensors(&want).unwrap() == want);
        let n = u64::from_le_bytes(want[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        let header = std::str::from_utf8(&want[8..8 + n]).unwrap();
        let pos: Vec<usize> = keys.iter().map(|(k, _)| header.find(k).unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{header}");
    }

    #[test]
    fn canonical_form_equals_serialize_when_the_map_order_is_fixed() {
        // With at most one metadata key safetensors' own output is already deterministic: the
        // canonical form must reproduce it exactly (same entry layout, order and padding).
        for meta in [vec![], vec![("format", "pt")]] {
            let raw = serialize_with(&meta);
            assert!(canonical_safetensors(&raw).unwrap() == raw, "{meta:?}");
        }
        let raw = serialize_with(&[]);
        let e = canonical_safetensors(&raw[..raw.len() - 1]).unwrap_err();
        assert!(e.to_string().contains("invalid safetensors"), "{e}");
    }
}
