//! Every config shipped in `configs/` parses and validates with the loader of its `method`
//! (the paper-size CIFAR-10 config included, which this machine cannot train), so that a typo
//! in a file nobody runs in CI is caught here.

use nsgf::train::{cfm, config::ToyConfig, nsgfpp, sjko, wgf};
use std::path::{Path, PathBuf};

fn tomls(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            tomls(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

#[test]
fn every_shipped_config_loads() {
    let mut files = Vec::new();
    tomls(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("configs"),
        &mut files,
    );
    files.sort();
    let mut methods = std::collections::BTreeMap::<String, usize>::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let method = nsgfpp::config_method(&text).unwrap_or_else(|| "nsgf".into());
        let loaded = match method.as_str() {
            "nsgfpp" => nsgfpp::NsgfppConfig::load(f).map(drop),
            "cfm" => cfm::CfmConfig::load(f).map(drop),
            "jko" | "ept" => wgf::WgfConfig::load(f).map(drop),
            "sjko" => sjko::SjkoConfig::load(f).map(drop),
            "nsgf" => ToyConfig::load(f).map(drop),
            other => panic!("{}: unknown method {other}", f.display()),
        };
        if let Err(e) = loaded {
            panic!("{}: {e}", f.display());
        }
        *methods.entry(method).or_default() += 1;
    }
    // Every method ships configs (the 2-D suite, Table 1's baselines, the image experiments).
    for m in ["nsgf", "nsgfpp", "cfm", "jko", "ept", "sjko"] {
        assert!(
            methods.get(m).copied().unwrap_or(0) > 0,
            "no {m} config in {methods:?}"
        );
    }
    assert!(files.len() >= 34, "{} configs", files.len());
}
