//! Reading safetensors checkpoints, single-file or sharded with the Hugging Face convention.
//!
//! A sharded checkpoint is a set of `.safetensors` files plus an index
//! `<name>.safetensors.index.json`:
//!
//! ```json
//! {"metadata": {"total_size": 87211136},
//!  "weight_map": {"conv.weight": "model-00001-of-00002.safetensors", ...}}
//! ```
//!
//! `weight_map` maps every tensor name to the shard file (a path relative to the index's folder)
//! that holds it. [`SafetensorsStore::open`] accepts
//!
//! * an index file `*.safetensors.index.json`,
//! * a single `*.safetensors` file,
//! * a folder holding exactly one index file, or else exactly one `.safetensors` file.
//!
//! All tensors are read into memory at open time and the index is checked against the shards:
//! a missing shard, a tensor the index names but its shard lacks, a tensor present in a shard
//! but absent from the index, or a tensor present in two shards is an error naming the tensor and
//! the file. Supported element types: F32, F64, U8, I64 and I32 (widened to I64); other types
//! are an error naming the tensor.

use crate::error::{NsgfError, Result};
use crate::io::npy::{NpyArray, NpyData};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Every tensor of a (possibly sharded) safetensors checkpoint, in memory.
#[derive(Clone, Debug)]
pub struct SafetensorsStore {
    /// What was opened (index or single file), for error messages.
    source: PathBuf,
    /// Tensor name -> (array, file it came from).
    tensors: BTreeMap<String, (NpyArray, PathBuf)>,
}

impl SafetensorsStore {
    /// Opens a checkpoint: an index `*.safetensors.index.json`, a single `*.safetensors` file, or
    /// a folder holding one of them (an index takes precedence). See the module docs.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| NsgfError::io(path, e))?;
        if meta.is_dir() {
            let file = find_checkpoint_in_dir(path)?;
            return Self::open(file);
        }
        let name = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.ends_with(".json") {
            Self::open_index(path)
        } else {
            Self::open_single(path)
        }
    }

    /// Opens one `.safetensors` file.
    pub fn open_single(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut tensors = BTreeMap::new();
        for (name, arr) in read_file(path)? {
            tensors.insert(name, (arr, path.to_path_buf()));
        }
        Ok(Self {
            source: path.to_path_buf(),
            tensors,
        })
    }

    /// Opens a Hugging Face index `*.safetensors.index.json` and every shard it names.
    pub fn open_index(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| NsgfError::io(path, e))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| NsgfError::format(path, format!("not valid JSON: {e}")))?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| {
                NsgfError::format(path, "index has no \"weight_map\" object (tensor -> shard)")
            })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        // Shard file -> tensor names the index puts there (BTreeMap: deterministic order).
        let mut shards: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (tensor, shard) in map {
            let shard = shard.as_str().ok_or_else(|| {
                NsgfError::format(
                    path,
                    format!("weight_map entry for tensor `{tensor}` is not a file name"),
                )
            })?;
            let rel = Path::new(shard);
            if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
                return Err(NsgfError::format(
                    path,
                    format!(
                        "weight_map entry for tensor `{tensor}` is `{shard}`: shard paths must be \
                         relative to the index's folder, without `..`"
                    ),
                ));
            }
            shards
                .entry(shard.to_string())
                .or_default()
                .push(tensor.clone());
        }
        if shards.is_empty() {
            return Err(NsgfError::format(path, "index has an empty weight_map"));
        }
        let mut tensors: BTreeMap<String, (NpyArray, PathBuf)> = BTreeMap::new();
        let mut data_bytes = 0usize;
        for (shard, expected) in &shards {
            let shard_path = dir.join(shard);
            if !shard_path.is_file() {
                return Err(NsgfError::format(
                    path,
                    format!(
                        "shard {} (holding tensor `{}` and {} others) is missing",
                        shard_path.display(),
                        expected[0],
                        expected.len() - 1
                    ),
                ));
            }
            let mut found = read_file(&shard_path)?;
            for tensor in expected {
                let arr = found.remove(tensor).ok_or_else(|| {
                    NsgfError::format(
                        &shard_path,
                        format!(
                            "tensor `{tensor}` is mapped to this shard by the index {} but the \
                             shard does not contain it (mismatched shards?)",
                            path.display()
                        ),
                    )
                })?;
                data_bytes += arr.len() * element_bytes(&arr.data);
                tensors.insert(tensor.clone(), (arr, shard_path.clone()));
            }
            if let Some(extra) = found.keys().next() {
                let other = if tensors.contains_key(extra) || map.contains_key(extra) {
                    "the index maps it to another shard"
                } else {
                    "the index does not list it"
                };
                return Err(NsgfError::format(
                    &shard_path,
                    format!(
                        "shard contains tensor `{extra}` but {other} (mismatched shards or index)"
                    ),
                ));
            }
        }
        if let Some(total) = json
            .get("metadata")
            .and_then(|m| m.get("total_size"))
            .and_then(|t| t.as_u64())
        {
            if total as usize != data_bytes {
                tracing::warn!(
                    "{}: metadata.total_size = {total} but the shards hold {data_bytes} bytes of \
                     tensor data",
                    path.display()
                );
            }
        }
        Ok(Self {
            source: path.to_path_buf(),
            tensors,
        })
    }

    /// The index or file that was opened.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when the checkpoint holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(|s| s.as_str())
    }

    /// True when a tensor of that name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The tensor `name`, or an error naming it.
    pub fn get(&self, name: &str) -> Result<&NpyArray> {
        self.tensors.get(name).map(|(a, _)| a).ok_or_else(|| {
            NsgfError::format(&self.source, format!("checkpoint has no tensor `{name}`"))
        })
    }

    /// Adds or replaces a tensor (e.g. to attach a head to a loaded checkpoint).
    pub fn insert(&mut self, name: impl Into<String>, array: NpyArray) {
        self.tensors
            .insert(name.into(), (array, self.source.clone()));
    }

    /// Removes a tensor, returning it.
    pub fn remove(&mut self, name: &str) -> Option<NpyArray> {
        self.tensors.remove(name).map(|(a, _)| a)
    }

    /// The tensor `name` as f32 values, after checking that its shape is `shape`; the error
    /// names the tensor, the file it came from and both shapes.
    pub fn f32_with_shape(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (arr, file) = self.tensors.get(name).ok_or_else(|| {
            NsgfError::format(
                &self.source,
                format!("checkpoint has no tensor `{name}` (expected shape {shape:?})"),
            )
        })?;
        if arr.shape != shape {
            return Err(NsgfError::format(
                file,
                format!(
                    "tensor `{name}` has shape {:?}, expected {shape:?}",
                    arr.shape
                ),
            ));
        }
        match &arr.data {
            NpyData::F32(v) => Ok(v.clone()),
            NpyData::F64(v) => Ok(v.iter().map(|&x| x as f32).collect()),
            _ => Err(NsgfError::format(
                file,
                format!("tensor `{name}` is not a floating-point tensor"),
            )),
        }
    }
}

/// Picks the checkpoint inside a folder: the only `*.safetensors.index.json`, else the only
/// `*.safetensors`.
fn find_checkpoint_in_dir(dir: &Path) -> Result<PathBuf> {
    let mut index = Vec::new();
    let mut single = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| NsgfError::io(dir, e))? {
        let entry = entry.map_err(|e| NsgfError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".safetensors.index.json") {
            index.push(entry.path());
        } else if name.ends_with(".safetensors") {
            single.push(entry.path());
        }
    }
    index.sort();
    single.sort();
    let pick = |list: Vec<PathBuf>, what: &str| -> Result<PathBuf> {
        match list.len() {
            1 => Ok(list.into_iter().next().unwrap_or_default()),
            _ => Err(NsgfError::format(
                dir,
                format!(
                    "folder holds {} {what} files ({}); point at one of them",
                    list.len(),
                    list.iter()
                        .map(|p| p.file_name().unwrap_or_default().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    };
    if !index.is_empty() {
        pick(index, "*.safetensors.index.json")
    } else if !single.is_empty() {
        pick(single, "*.safetensors")
    } else {
        Err(NsgfError::format(
            dir,
            "folder holds no *.safetensors.index.json and no *.safetensors file",
        ))
    }
}

fn element_bytes(data: &NpyData) -> usize {
    match data {
        NpyData::F32(_) => 4,
        NpyData::F64(_) | NpyData::I64(_) => 8,
        NpyData::U8(_) => 1,
    }
}

/// Reads every tensor of one `.safetensors` file.
fn read_file(path: &Path) -> Result<BTreeMap<String, NpyArray>> {
    super::tensors::read_safetensors(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;
    use safetensors::Dtype;

    fn write_shard(path: &Path, tensors: &[(&str, Vec<usize>, Vec<f32>)]) {
        let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
            .iter()
            .map(|(n, s, d)| {
                (
                    n.to_string(),
                    d.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    s.clone(),
                )
            })
            .collect();
        let views: Vec<(String, TensorView)> = bytes
            .iter()
            .map(|(n, b, s)| {
                (
                    n.clone(),
                    TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
                )
            })
            .collect();
        safetensors::serialize_to_file(views, None, path).unwrap();
    }

    fn write_index(path: &Path, map: &[(&str, &str)]) {
        let wm: serde_json::Map<String, serde_json::Value> = map
            .iter()
            .map(|(t, s)| (t.to_string(), serde_json::Value::from(*s)))
            .collect();
        let json = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": wm});
        std::fs::write(path, json.to_string()).unwrap();
    }

    fn sharded(dir: &Path) {
        write_shard(
            &dir.join("m-1.safetensors"),
            &[("a", vec![2], vec![1.0, 2.0])],
        );
        write_shard(
            &dir.join("m-2.safetensors"),
            &[("b", vec![1, 2], vec![3.0, 4.0])],
        );
    }

    #[test]
    fn reads_sharded_checkpoint_from_index_or_folder() {
        let dir = tempfile::tempdir().unwrap();
        sharded(dir.path());
        let index = dir.path().join("m.safetensors.index.json");
        write_index(
            &index,
            &[("a", "m-1.safetensors"), ("b", "m-2.safetensors")],
        );
        for store in [
            SafetensorsStore::open(&index).unwrap(),
            SafetensorsStore::open(dir.path()).unwrap(),
        ] {
            assert_eq!(store.len(), 2);
            assert_eq!(store.f32_with_shape("a", &[2]).unwrap(), vec![1.0, 2.0]);
            assert_eq!(store.f32_with_shape("b", &[1, 2]).unwrap(), vec![3.0, 4.0]);
        }
    }

    #[test]
    fn reads_single_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("one.safetensors");
        write_shard(&file, &[("w", vec![3], vec![1.0, 2.0, 3.0])]);
        let store = SafetensorsStore::open(&file).unwrap();
        assert_eq!(store.names().collect::<Vec<_>>(), vec!["w"]);
        let store = SafetensorsStore::open(dir.path()).unwrap();
        assert!(store.contains("w"));
    }

    #[test]
    fn errors_name_the_tensor_or_shard() {
        let dir = tempfile::tempdir().unwrap();
        sharded(dir.path());
        let index = dir.path().join("m.safetensors.index.json");

        // Shape mismatch names the tensor.
        write_index(
            &index,
            &[("a", "m-1.safetensors"), ("b", "m-2.safetensors")],
        );
        let store = SafetensorsStore::open(&index).unwrap();
        let e = store.f32_with_shape("b", &[2, 1]).unwrap_err().to_string();
        assert!(e.contains("`b`") && e.contains("[1, 2]"), "{e}");
        let e = store.f32_with_shape("zz", &[1]).unwrap_err().to_string();
        assert!(e.contains("`zz`"), "{e}");

        // Tensor mapped to the wrong shard.
        write_index(
            &index,
            &[("a", "m-2.safetensors"), ("b", "m-2.safetensors")],
        );
        let e = SafetensorsStore::open(&index).unwrap_err().to_string();
        assert!(e.contains("`a`"), "{e}");

        // Tensor in a shard but missing from the index.
        write_shard(
            &dir.path().join("m-1.safetensors"),
            &[("a", vec![2], vec![1.0, 2.0]), ("c", vec![1], vec![0.0])],
        );
        write_index(
            &index,
            &[("a", "m-1.safetensors"), ("b", "m-2.safetensors")],
        );
        let e = SafetensorsStore::open(&index).unwrap_err().to_string();
        assert!(e.contains("`c`") && e.contains("m-1"), "{e}");
        sharded(dir.path());

        // Missing shard file.
        write_index(
            &index,
            &[("a", "m-1.safetensors"), ("b", "m-3.safetensors")],
        );
        let e = SafetensorsStore::open(&index).unwrap_err().to_string();
        assert!(
            e.contains("m-3.safetensors") && e.contains("missing"),
            "{e}"
        );

        // Escaping paths are refused.
        write_index(&index, &[("a", "../m-1.safetensors")]);
        assert!(SafetensorsStore::open(&index).is_err());

        // Garbage file.
        let bad = dir.path().join("bad.safetensors");
        std::fs::write(&bad, b"not safetensors").unwrap();
        let e = SafetensorsStore::open(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.safetensors"), "{e}");
    }
}
