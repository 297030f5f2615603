//! Checkpoints of a run directory, written atomically (temporary file + rename):
//!
//! * `config.toml` — the run's config;
//! * `model.safetensors` — the network weights (burn-store safetensors layout);
//! * `optim.mpk` — the Adam state (burn's named MessagePack record), for resuming;
//! * `state.json` — `{"step": k, "param_ids": [...]}`: the completed gradient steps and the ids
//!   of the parameters (in module order) that the Adam state is keyed by. A freshly built model
//!   gets fresh random ids, so on resume the loaded model takes the saved ids back: the Adam
//!   moments then reattach to their parameters and a resumed run continues exactly.
//!
//! Saving stages every file of a checkpoint under a temporary name first and renames them into
//! place only once all are written, `state.json` last: a failed write (disk full, read-only
//! folder) leaves the previous checkpoint whole and says so. `state.json` records a hash of
//! each file it covers, so a set mixed from two saves (a crash between the renames) is refused
//! on loading instead of resuming from inconsistent pieces. The Adam state is written with its
//! MessagePack maps in sorted key order, so identical runs write identical bytes.
//!
//! Loading checks every piece and names the file that is missing or corrupt.

use crate::error::{NsgfError, Result};
use crate::io::fnv1a_hex;
use crate::io::npy::{stage_file, write_atomic, StagedFile};
use crate::io::tensors::canonical_safetensors;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::Optimizer;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Bool, Int, Tensor};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Progress saved with a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Completed gradient steps.
    pub step: usize,
}

/// `state.json` as written: the state, the parameter ids in module order, and the FNV-1a hash
/// of every other file of the checkpoint.
#[derive(Serialize, Deserialize)]
struct StateFile {
    #[serde(flatten)]
    state: TrainState,
    #[serde(default)]
    param_ids: Vec<u64>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    files: std::collections::BTreeMap<String, String>,
}

/// Refuses to resume the checkpoint in `dir` to `steps` steps in all when it already stands
/// past them: a run cannot be shortened (it trained nothing, yet its `config.toml` was
/// rewritten to the shorter length). Called before a resumed run writes anything.
pub fn refuse_shortening(dir: &Path, steps: usize) -> Result<()> {
    match saved_step(dir)? {
        Some(done) if done > steps => Err(NsgfError::Param(format!(
            "{}: cannot resume to {steps} steps: its checkpoint is at step {done}, and a run \
             cannot be shortened; resume to {done} steps or more, or train afresh \
             (`nsgf train --overwrite`)",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// Rewrites MessagePack bytes with every map's entries in sorted key order (burn records keep
/// the Adam state in a `HashMap`, whose order changes from run to run); readers are unaffected.
pub fn canonical_msgpack(bytes: &[u8]) -> Result<Vec<u8>> {
    fn sort(v: &mut rmpv::Value) {
        match v {
            rmpv::Value::Map(entries) => {
                for (k, x) in entries.iter_mut() {
                    sort(k);
                    sort(x);
                }
                let key = |k: &rmpv::Value| {
                    let mut b = Vec::new();
                    let _ = rmpv::encode::write_value(&mut b, k);
                    b
                };
                entries.sort_by_cached_key(|(k, _)| key(k));
            }
            rmpv::Value::Array(items) => items.iter_mut().for_each(sort),
            _ => {}
        }
    }
    let bad = |e: String| NsgfError::Other(format!("canonical MessagePack: {e}"));
    let mut value = rmpv::decode::read_value(&mut &bytes[..]).map_err(|e| bad(e.to_string()))?;
    sort(&mut value);
    let mut out = Vec::with_capacity(bytes.len());
    rmpv::encode::write_value(&mut out, &value).map_err(|e| bad(e.to_string()))?;
    Ok(out)
}

/// Collects the parameter ids in module order.
struct IdCollector(Vec<u64>);

impl<B: Backend> ModuleVisitor<B> for IdCollector {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
        self.0.push(p.id.val());
    }
    fn visit_int<const D: usize>(&mut self, p: &Param<Tensor<B, D, Int>>) {
        self.0.push(p.id.val());
    }
    fn visit_bool<const D: usize>(&mut self, p: &Param<Tensor<B, D, Bool>>) {
        self.0.push(p.id.val());
    }
}

/// Gives the parameters the ids of a list, in module order.
struct IdAssigner(std::vec::IntoIter<u64>);

impl IdAssigner {
    fn next(&mut self, old: ParamId) -> ParamId {
        self.0.next().map(ParamId::from).unwrap_or(old)
    }
}

impl<B: Backend> ModuleMapper<B> for IdAssigner {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, t, m) = p.consume();
        Param::from_mapped_value(self.next(id), t, m)
    }
    fn map_int<const D: usize>(&mut self, p: Param<Tensor<B, D, Int>>) -> Param<Tensor<B, D, Int>> {
        let (id, t, m) = p.consume();
        Param::from_mapped_value(self.next(id), t, m)
    }
    fn map_bool<const D: usize>(
        &mut self,
        p: Param<Tensor<B, D, Bool>>,
    ) -> Param<Tensor<B, D, Bool>> {
        let (id, t, m) = p.consume();
        Param::from_mapped_value(self.next(id), t, m)
    }
}

/// The module with the parameter ids `base + 1, base + 2, ...` in module order, so that the
/// ids (and with them `state.json` and the keys of the Adam state) are the same in every run;
/// give each network trained in one process its own `base`.
pub fn sequential_ids<B: Backend, M: Module<B>>(model: M, base: u64) -> M {
    let n = param_ids::<B, M>(&model).len() as u64;
    let ids: Vec<u64> = (1..=n).map(|i| base + i).collect();
    model.map(&mut IdAssigner(ids.into_iter()))
}

/// The parameter ids of a module, in module order.
pub fn param_ids<B: Backend, M: Module<B>>(model: &M) -> Vec<u64> {
    let mut c = IdCollector(Vec::new());
    model.visit(&mut c);
    c.0
}

/// File names inside a run directory.
pub const MODEL_FILE: &str = "model.safetensors";
pub const OPTIM_FILE: &str = "optim.mpk";
pub const STATE_FILE: &str = "state.json";
pub const CONFIG_FILE: &str = "config.toml";
/// Wall-clock training time up to the checkpoint (`{"step": …, "seconds": …}`), summed over every
/// resumed part: the only file of a checkpoint that differs between two identical seeded runs.
pub const TIMING_FILE: &str = "timing.json";
/// The weights' moving average, beside the model when the run keeps one (`train.ema > 0`);
/// written before `state.json`, so a complete checkpoint has it.
pub const EMA_FILE: &str = "ema.safetensors";

/// Writes a run's `config.toml` (atomically). When resuming a run that already has one, the
/// new config must train the same thing: both are read as `C` (so that keys left at their
/// defaults compare equal whichever version wrote them) and compared key by key; any
/// difference but those [`may_change_on_resume`] allows is an error naming the keys, raised
/// before anything is written. A file that already holds the same text is left untouched
/// (its modification time too). Creates `dir` if needed. Without this, a resumed run would
/// silently mix two settings (say an NSF trained half on `t ~ U(0, 1)` and half on
/// `U(0.5, 1)`).
pub fn write_run_config<C: Serialize + serde::de::DeserializeOwned>(
    dir: &Path,
    cfg: &C,
    resume: bool,
) -> Result<()> {
    let path = dir.join(CONFIG_FILE);
    let new = toml::Value::try_from(cfg)
        .map_err(|e| NsgfError::Other(format!("config serialisation: {e}")))?;
    // The config already there, read once: checked against `cfg` on resume, compared with the
    // new text before writing. A fresh run overwrites a file it cannot read.
    let saved = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if resume && e.kind() != std::io::ErrorKind::NotFound => {
            return Err(NsgfError::io(&path, e))
        }
        Err(_) => None,
    };
    if let (true, Some(text)) = (resume, &saved) {
        let old: C = toml::from_str(text).map_err(|e| {
            // Same method (or none) in both: a file this version cannot read.
            let method = |v: &toml::Value| v.get("method").cloned();
            let same =
                toml::from_str::<toml::Value>(text).is_ok_and(|old| method(&old) == method(&new));
            let what = if same {
                "it does not parse as this version's config (edit it, or start the \
                 run afresh with `nsgf train --overwrite`)"
            } else {
                "not a config of this run's method"
            };
            NsgfError::format(&path, format!("cannot resume: {what}: {e}"))
        })?;
        let old = toml::Value::try_from(&old)
            .map_err(|e| NsgfError::Other(format!("config serialisation: {e}")))?;
        let mut changed = Vec::new();
        differing_keys(&old, &new, "", &mut changed);
        let (allowed, refused): (Vec<String>, Vec<String>) =
            changed.into_iter().partition(|k| may_change_on_resume(k));
        if !refused.is_empty() {
            return Err(NsgfError::format(
                &path,
                format!(
                    "cannot resume: this run was trained under another config (it differs \
                     in {}); resume with the run's own config.toml, train into a new \
                     folder, or start this one afresh (`nsgf train --overwrite`); a \
                     resumed run may change only its steps, checkpoint_every, log_every, \
                     threads, [sampling] and where the data lie",
                    refused.join(", ")
                ),
            ));
        }
        if !allowed.is_empty() {
            tracing::info!(changed = %allowed.join(", "), "resuming with changed settings");
        }
    }
    let text = toml::to_string_pretty(cfg)
        .map_err(|e| NsgfError::Other(format!("config serialisation: {e}")))?;
    // The same text already there: left untouched (its modification time too).
    if saved.as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    crate::io::create_dir_all(dir)?;
    write_atomic(&path, text.as_bytes())
}

/// Dotted paths of the keys whose values differ between two TOML values (a key present on one
/// side only counts).
fn differing_keys(a: &toml::Value, b: &toml::Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (toml::Value::Table(x), toml::Value::Table(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => differing_keys(u, v, &p, out),
                    _ => out.push(p),
                }
            }
        }
        _ if a != b => out.push(path.to_string()),
        _ => {}
    }
}

/// The settings a resumed run may change (dotted config paths): how long it trains (`steps` of
/// a `[train]` table, or the top-level flow steps K of JKO-Flow / EPT: extending a run; a
/// cosine schedule then follows the new length; not NSGF's `nsgf.steps` = T), how often it
/// checkpoints and logs, its CPU threads, how it samples (`[sampling]`) and where its data lie
/// (`data.….dir` / `data.….path`). Everything else changes what is being trained.
pub fn may_change_on_resume(path: &str) -> bool {
    let seg: Vec<&str> = path.split('.').collect();
    let last = seg[seg.len() - 1];
    matches!(last, "checkpoint_every" | "log_every" | "threads")
        || seg[0] == "sampling"
        || (last == "steps" && (seg.len() == 1 || seg[seg.len() - 2] == "train"))
        || (seg[0] == "data" && matches!(last, "dir" | "path"))
}

/// Serialises a module's weights to safetensors bytes, byte-reproducibly: the same weights give
/// the same bytes in every run (burn's store writes its metadata from a `HashMap`; the header is
/// rewritten with sorted keys by [`canonical_safetensors`]).
pub fn module_to_bytes<B: Backend, M: Module<B> + ModuleSnapshot<B>>(model: &M) -> Result<Vec<u8>> {
    let mut store = SafetensorsStore::from_bytes(None);
    model
        .save_into(&mut store)
        .map_err(|e| NsgfError::Other(format!("saving weights: {e:?}")))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| NsgfError::Other(format!("saving weights: {e:?}")))?;
    canonical_safetensors(&bytes)
}

/// Loads weights into `model` from a safetensors file written by [`save_model`].
pub fn load_model<B: Backend, M: Module<B> + ModuleSnapshot<B>>(
    mut model: M,
    path: &Path,
) -> Result<M> {
    let bytes = std::fs::read(path).map_err(|e| NsgfError::io(path, e))?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes));
    let result = model.load_from(&mut store).map_err(|e| {
        NsgfError::format(path, format!("corrupt or incompatible checkpoint: {e:?}"))
    })?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        return Err(NsgfError::format(
            path,
            format!(
                "checkpoint does not fit the model (missing: {:?}, errors: {:?})",
                result.missing, result.errors
            ),
        ));
    }
    Ok(model)
}

/// The weights to sample with from the network checkpointed in `dir`: its moving average
/// (`ema.safetensors`) when the run kept one, else the trained weights.
pub fn load_for_sampling<B: Backend, M: Module<B> + ModuleSnapshot<B>>(
    model: M,
    dir: &Path,
) -> Result<M> {
    let ema = dir.join(EMA_FILE);
    if ema.exists() {
        load_model(model, &ema)
    } else {
        load_model(model, &dir.join(MODEL_FILE))
    }
}

/// Writes the model weights atomically.
pub fn save_model<B: Backend, M: Module<B> + ModuleSnapshot<B>>(
    model: &M,
    path: &Path,
) -> Result<()> {
    write_atomic(path, &module_to_bytes(model)?)
}

/// Writes model, optimizer state and progress into `dir` (see the module docs: all files
/// staged first, `state.json` renamed last).
pub fn save_checkpoint<B, M, O>(dir: &Path, model: &M, optim: &O, state: &TrainState) -> Result<()>
where
    B: AutodiffBackend,
    M: burn::module::AutodiffModule<B> + ModuleSnapshot<B>,
    O: Optimizer<M, B>,
{
    save_checkpoint_with(dir, model, optim, state, &[])
}

/// [`save_checkpoint`] with more files of the same checkpoint (`(name, bytes)`, e.g. the EMA
/// weights and the timing), staged and renamed with the others, before `state.json`.
pub fn save_checkpoint_with<B, M, O>(
    dir: &Path,
    model: &M,
    optim: &O,
    state: &TrainState,
    extra: &[(&str, Vec<u8>)],
) -> Result<()>
where
    B: AutodiffBackend,
    M: burn::module::AutodiffModule<B> + ModuleSnapshot<B>,
    O: Optimizer<M, B>,
{
    let optim_bytes = NamedMpkBytesRecorder::<FullPrecisionSettings>::new()
        .record(optim.to_record(), ())
        .map_err(|e| NsgfError::Other(format!("saving optimizer state: {e}")))?;
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        (MODEL_FILE, module_to_bytes(model)?),
        (OPTIM_FILE, canonical_msgpack(&optim_bytes)?),
    ];
    files.extend(extra.iter().cloned());
    let file = StateFile {
        state: state.clone(),
        param_ids: param_ids::<B, M>(model),
        // Not the timing: it differs between identical runs, and state.json must not.
        files: files
            .iter()
            .filter(|(name, _)| *name != TIMING_FILE)
            .map(|(name, bytes)| (name.to_string(), fnv1a_hex(bytes)))
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| NsgfError::Other(e.to_string()))?;
    files.push((STATE_FILE, json));
    let staged = files
        .iter()
        .map(|(name, bytes)| stage_file(&dir.join(name), bytes))
        .collect::<Result<Vec<StagedFile>>>()
        .map_err(|e| {
            NsgfError::Other(format!(
                "writing the checkpoint of step {} into {} failed ({e}); the previous checkpoint \
                 there is intact",
                state.step,
                dir.display()
            ))
        })?;
    for f in staged {
        f.commit()?;
    }
    Ok(())
}

/// The step of the complete checkpoint in `dir`, `None` when there is none.
pub fn saved_step(dir: &Path) -> Result<Option<usize>> {
    let path = dir.join(STATE_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read(&path).map_err(|e| NsgfError::io(&path, e))?;
    let file: StateFile = serde_json::from_slice(&text)
        .map_err(|e| NsgfError::format(&path, format!("corrupt state file: {e}")))?;
    Ok(Some(file.state.step))
}

/// Loads model, optimizer state and progress from `dir`.
pub fn load_checkpoint<B, M, O>(
    dir: &Path,
    model: M,
    optim: O,
    device: &B::Device,
) -> Result<(M, O, TrainState)>
where
    B: AutodiffBackend,
    M: burn::module::AutodiffModule<B> + ModuleSnapshot<B>,
    O: Optimizer<M, B>,
{
    let state_path = dir.join(STATE_FILE);
    let text = std::fs::read(&state_path).map_err(|e| NsgfError::io(&state_path, e))?;
    let file: StateFile = serde_json::from_slice(&text)
        .map_err(|e| NsgfError::format(&state_path, format!("corrupt state file: {e}")))?;
    let mut model = load_model(model, &dir.join(MODEL_FILE))?;
    let n = param_ids::<B, M>(&model).len();
    if !file.param_ids.is_empty() {
        if file.param_ids.len() != n {
            return Err(NsgfError::format(
                &state_path,
                format!(
                    "the checkpoint has {} parameters, the model {n}",
                    file.param_ids.len()
                ),
            ));
        }
        model = model.map(&mut IdAssigner(file.param_ids.into_iter()));
    }
    for (name, hash) in &file.files {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| NsgfError::io(&path, e))?;
        if fnv1a_hex(&bytes) != *hash {
            return Err(NsgfError::format(
                &path,
                format!(
                    "does not belong to the checkpoint of step {} in state.json (a save was cut \
                     short); the files of this checkpoint are inconsistent",
                    file.state.step
                ),
            ));
        }
    }
    let state = file.state;
    let optim_path = dir.join(OPTIM_FILE);
    let bytes = std::fs::read(&optim_path).map_err(|e| NsgfError::io(&optim_path, e))?;
    let corrupt =
        |e: String| NsgfError::format(&optim_path, format!("corrupt optimizer state: {e}"));
    check_param_ids(&bytes).map_err(corrupt)?;
    // burn's record loading panics on some malformed records (found by tests/fuzz.rs): the
    // check above refuses the known ones, this catches the rest.
    let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        NamedMpkBytesRecorder::<FullPrecisionSettings>::new()
            .load(bytes, device)
            .map(|record| optim.load_record(record))
    }))
    .map_err(|_| corrupt("the record does not decode".into()))?
    .map_err(|e| corrupt(e.to_string()))?;
    Ok((model, loaded, state))
}

/// Checks that the keys of the record's `item` map are parameter ids as burn writes them
/// (`ParamId::serialize`: base32hex, lower case, no padding, at most 8 bytes, zero trailing
/// bits): burn's `ParamId::deserialize` panics on anything else.
fn check_param_ids(bytes: &[u8]) -> std::result::Result<(), String> {
    let value = rmpv::decode::read_value(&mut &bytes[..]).map_err(|e| e.to_string())?;
    let rmpv::Value::Map(top) = value else {
        return Err("not a record".into());
    };
    let Some((_, rmpv::Value::Map(items))) = top.iter().find(|(k, _)| k.as_str() == Some("item"))
    else {
        return Err("the record has no item map".into());
    };
    for (k, _) in items {
        let key = k.as_str().ok_or("a parameter id is not a string")?;
        if !valid_param_id(key) {
            return Err(format!("invalid parameter id {key:?}"));
        }
    }
    Ok(())
}

fn valid_param_id(s: &str) -> bool {
    let (mut bits, mut acc, mut n) = (0u32, 0u64, 0usize);
    if s.is_empty() || !matches!(s.len() % 8, 0 | 2 | 4 | 5 | 7) {
        return false;
    }
    for c in s.bytes() {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'v' => c - b'a' + 10,
            _ => return false,
        };
        acc = (acc << 5) | v as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    n <= 8 && acc == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use crate::models::mlp::MlpConfig;

    #[test]
    fn parameter_ids_round_trip_and_bad_ones_are_refused() {
        for v in [0u64, 1, 42, 7 << 40, u64::MAX] {
            let s = ParamId::from(v).serialize();
            assert!(valid_param_id(&s), "{s}");
        }
        for bad in [
            "",
            "w",
            "0",
            "000",
            "0123456789abcdefghijklm",
            "00000000000001",
        ] {
            assert!(!valid_param_id(bad), "{bad}");
        }
        // Non-zero trailing bits: "01" decodes 10 bits into one byte plus 2 set bits.
        assert!(!valid_param_id("01"));
        assert!(valid_param_id("00"));
    }

    /// A resumed run keeps its config: any change but the allowed ones is refused (and the
    /// folder left alone); the allowed ones are written; a fresh run overwrites.
    #[test]
    fn resuming_refuses_another_config() {
        use crate::train::nsgfpp::NsgfppConfig;
        // Written the way a user would, defaults left out.
        let text = "method = \"nsgfpp\"\nproblem = \"moons\"\n[nsgf]\nsteps = 3\n\
                    [nsf]\nt_min = 0.5\n[sampling]\nnsf_steps = 4\n";
        let cfg = NsgfppConfig::from_toml(text, Path::new("x.toml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        std::fs::write(&path, text).unwrap();
        // The same config, spelt out in full: nothing differs.
        write_run_config(dir.path(), &cfg, true).unwrap();
        let full = std::fs::read_to_string(&path).unwrap();
        assert_eq!(NsgfppConfig::from_toml(&full, &path).unwrap(), cfg);
        // What changes what is trained is refused, the file untouched.
        let mut other = cfg.clone();
        other.nsf.t_min = 0.0;
        other.nsgf.steps = 4; // T, not a [train] table's steps
        other.seed = 1;
        let err = write_run_config(dir.path(), &other, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nsf.t_min, nsgf.steps, seed"), "{err}");
        assert!(err.contains("cannot resume"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), full);
        // Training longer, checkpointing more often and sampling otherwise are fine.
        let mut longer = cfg.clone();
        longer.train.steps += 100;
        longer.nsf.train.checkpoint_every = 7;
        longer.sampling.nsf_steps = Some(9);
        write_run_config(dir.path(), &longer, true).unwrap();
        let now = std::fs::read_to_string(&path).unwrap();
        assert_eq!(NsgfppConfig::from_toml(&now, &path).unwrap(), longer);
        // A fresh run (no resume) overwrites whatever was there.
        write_run_config(dir.path(), &other, false).unwrap();
        let now = std::fs::read_to_string(&path).unwrap();
        assert_eq!(NsgfppConfig::from_toml(&now, &path).unwrap(), other);
        // A config of another method cannot be resumed as this one; one of this method that
        // this version cannot read says so.
        std::fs::write(&path, "method = \"cfm\"\n").unwrap();
        let err = write_run_config(dir.path(), &cfg, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a config of this run's method"), "{err}");
        std::fs::write(&path, format!("{text}gone = 1\n")).unwrap();
        let err = write_run_config(dir.path(), &cfg, true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not parse as this version's config"),
            "{err}"
        );
        // No config yet: resuming writes it.
        let fresh = dir.path().join("fresh");
        std::fs::create_dir_all(&fresh).unwrap();
        write_run_config(&fresh, &cfg, true).unwrap();
        assert!(fresh.join(CONFIG_FILE).exists());
    }

    #[test]
    fn the_settings_a_resume_may_change() {
        for ok in [
            "train.steps",
            "nsf.train.steps",
            "time.train.checkpoint_every",
            "checkpoint_every",
            "train.log_every",
            "train.threads",
            "sampling.nsf_steps",
            "sampling",
            "data.dataset.dir",
            "data.dataset.path",
            "steps",
        ] {
            assert!(may_change_on_resume(ok), "{ok}");
        }
        for no in [
            "nsgf.steps",
            "train.lr",
            "train.batch",
            "nsf.t_min",
            "seed",
            "data.dataset.split",
            "iterations",
        ] {
            assert!(!may_change_on_resume(no), "{no}");
        }
    }

    #[test]
    fn saved_weights_are_byte_reproducible() {
        let device = Default::default();
        let config = MlpConfig::new(2).with_hidden(8).with_layers(2);
        let model = config.init::<Cpu>(&device);
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first").join(MODEL_FILE);
        save_model(&model, &first).unwrap();
        let want = std::fs::read(&first).unwrap();
        // Every save builds a fresh store and fresh metadata maps (new hash seeds).
        for i in 0..8 {
            let p = dir.path().join(format!("{i}")).join(MODEL_FILE);
            save_model(&model, &p).unwrap();
            assert!(std::fs::read(&p).unwrap() == want, "save {i} differs");
        }
        // The header lists the metadata first, keys sorted.
        let n = u64::from_le_bytes(want[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&want[8..8 + n]).unwrap();
        let meta = header
            .strip_prefix(r#"{"__metadata__":{"format":"safetensors","producer":"burn","version":"#)
            .unwrap_or_else(|| panic!("unexpected header {header}"));
        assert!(meta.contains(r#""layers.0.weight":"#), "{header}");
        // The canonical file loads back into the same weights.
        let back = load_model(config.init::<Cpu>(&device), &first).unwrap();
        assert!(module_to_bytes(&back).unwrap() == want);
    }

    #[test]
    fn a_loaded_checkpoint_takes_the_saved_parameter_ids() {
        use crate::backend::CpuAutodiff;
        use crate::models::mlp::VelocityMlp;
        use burn::optim::AdamConfig;
        let device = Default::default();
        let config = MlpConfig::new(2).with_hidden(8).with_layers(2);
        let model = sequential_ids(config.init::<CpuAutodiff>(&device), 7 << 40);
        let ids = param_ids::<CpuAutodiff, _>(&model);
        assert_eq!(ids, (1..=6).map(|i| (7 << 40) + i).collect::<Vec<u64>>());
        let optim = AdamConfig::new().init::<CpuAutodiff, VelocityMlp<CpuAutodiff>>();
        let dir = tempfile::tempdir().unwrap();
        save_checkpoint(dir.path(), &model, &optim, &TrainState { step: 3 }).unwrap();
        let fresh = config.init::<CpuAutodiff>(&device);
        assert_ne!(param_ids::<CpuAutodiff, _>(&fresh), ids);
        let optim = AdamConfig::new().init::<CpuAutodiff, VelocityMlp<CpuAutodiff>>();
        let (loaded, _, state) = load_checkpoint(dir.path(), fresh, optim, &device).unwrap();
        assert_eq!((param_ids::<CpuAutodiff, _>(&loaded), state.step), (ids, 3));
        // A model of another shape is refused with the file's name.
        let other = MlpConfig::new(2)
            .with_hidden(8)
            .with_layers(3)
            .init::<CpuAutodiff>(&device);
        let optim = AdamConfig::new().init::<CpuAutodiff, VelocityMlp<CpuAutodiff>>();
        assert!(load_checkpoint(dir.path(), other, optim, &device).is_err());
    }
}
