//! The ADM UNet against torchcfm's `UNetModelWrapper`: parameter counts of the paper's configs,
//! outputs on the same weights and inputs (tiny and MNIST configs), and the input gradient of
//! `sum(out · r)` (tiny). Fixtures: `tests/fixtures/unet/` (provenance in its README); the
//! weights are the fixtures' synthetic ones, regenerated from the parameter names
//! ([`SyntheticTorchParams`]).

use burn::backend::{Autodiff, Flex};
use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use nsgf::io::SafetensorsStore;
use nsgf::models::unet::{SyntheticTorchParams, TorchParams, UNet, UNetConfig};
use std::cell::RefCell;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/unet");

fn tensor<B: burn::tensor::backend::Backend, const D: usize>(
    store: &SafetensorsStore,
    name: &str,
) -> Tensor<B, D> {
    let a = store.get(name).unwrap();
    let shape: [usize; D] = a.shape.clone().try_into().unwrap();
    Tensor::from_data(TensorData::new(a.to_f32(), shape), &Default::default())
}

fn host<B: burn::tensor::backend::Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().into_vec::<f64>().unwrap()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn parameter_counts_equal_torchcfm() {
    let dev = Default::default();
    for (cfg, n) in [
        (UNetConfig::mnist(), 1_075_361),
        (UNetConfig::tiny(), 715_363),
        // torchcfm UNetModel(dim=(3, 32, 32), num_channels=32, num_res_blocks=1,
        // channel_mult=[1, 2, 2], attention_resolutions="16", num_heads=1).
        (UNetConfig::small(), 1_113_955),
        (UNetConfig::cifar10(), 35_746_307),
    ] {
        let net = cfg.init::<Flex>(&dev).unwrap();
        assert_eq!(net.num_params(), n, "{cfg:?}");
    }
}

fn output_parity(name: &str, cfg: UNetConfig) {
    let path = format!("{DIR}/unet_{name}.safetensors");
    let dev = Default::default();
    let net: UNet<Flex> = cfg
        .init::<Flex>(&dev)
        .unwrap()
        .load_torchcfm_params(&SyntheticTorchParams, &dev)
        .unwrap();
    let store = SafetensorsStore::open_single(&path).unwrap();
    let x = tensor::<Flex, 4>(&store, "input.x");
    let t = tensor::<Flex, 1>(&store, "input.t");
    let out = host(net.forward(x, t));
    let want = store.get("output.f64").unwrap().to_f64();
    let err = max_abs_diff(&out, &want);
    // torchcfm's own f32 output is 1.7e-6 from its f64 output; outputs have std ~0.6.
    assert!(err < 2e-5, "{name}: max |ours - torchcfm f64| = {err}");
    let err32 = max_abs_diff(&out, &store.get("output.f32").unwrap().to_f64());
    assert!(err32 < 2e-5, "{name}: max |ours - torchcfm f32| = {err32}");
}

#[test]
fn tiny_outputs_equal_torchcfm() {
    output_parity("tiny", UNetConfig::tiny());
}

#[test]
fn mnist_outputs_equal_torchcfm() {
    output_parity("mnist", UNetConfig::mnist());
}

#[test]
fn tiny_input_gradient_equals_torchcfm() {
    type B = Autodiff<Flex>;
    let path = format!("{DIR}/unet_tiny.safetensors");
    let dev = Default::default();
    let net: UNet<B> = UNetConfig::tiny()
        .init::<B>(&dev)
        .unwrap()
        .load_torchcfm_params(&SyntheticTorchParams, &dev)
        .unwrap();
    let store = SafetensorsStore::open_single(&path).unwrap();
    let grads = &store;
    let x = tensor::<B, 4>(&store, "input.x").require_grad();
    let t = tensor::<B, 1>(&store, "input.t");
    let r = tensor::<B, 4>(grads, "grad.r");
    let loss = (net.forward(x.clone(), t) * r).sum();
    let g = loss.backward();
    let dx = host(x.grad(&g).unwrap());
    let want = grads.get("grad.input.x").unwrap().to_f64();
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = max_abs_diff(&dx, &want);
    assert!(
        err < 1e-4 * scale,
        "input gradient: max error {err} (scale {scale})"
    );
}

#[test]
fn bad_configs_are_errors() {
    let dev = Default::default();
    let odd = UNetConfig::new(1, 30, 32, 1, vec![1, 2, 2], vec![16]);
    assert!(odd.init::<Flex>(&dev).is_err());
    let groups = UNetConfig::new(1, 28, 24, 1, vec![1, 2], vec![16]);
    assert!(groups.init::<Flex>(&dev).is_err());
    assert!(UNetConfig::named("resnet").is_err());
    // A checkpoint of another config names tensors with other shapes.
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny.safetensors");
    write_torchcfm_file(UNetConfig::tiny(), &tiny);
    let err = UNetConfig::mnist()
        .init::<Flex>(&dev)
        .unwrap()
        .load_torchcfm(&tiny, &dev)
        .unwrap_err();
    assert!(err.to_string().contains("shape"), "{err}");
}

/// A parameter as the loader asked for it: name, PyTorch shape, values.
type Asked = (String, Vec<usize>, Vec<f32>);

/// Records the names and shapes the loader asks for, answering with the synthetic weights.
struct Recorder(RefCell<Vec<Asked>>);

impl TorchParams for Recorder {
    fn values(&self, name: &str, shape: &[usize]) -> nsgf::Result<Vec<f32>> {
        let v = SyntheticTorchParams.values(name, shape)?;
        self.0
            .borrow_mut()
            .push((name.to_owned(), shape.to_vec(), v.clone()));
        Ok(v)
    }
}

/// Writes a network's synthetic weights as a torchcfm `state_dict` file (`model.` prefix,
/// 1-D convolution weights as PyTorch stores them, `[co, ci, 1]`).
fn write_torchcfm_file(cfg: UNetConfig, path: &std::path::Path) {
    let rec = Recorder(RefCell::new(Vec::new()));
    let dev = Default::default();
    cfg.init::<Flex>(&dev)
        .unwrap()
        .load_torchcfm_params(&rec, &dev)
        .unwrap();
    let entries: Vec<(String, Vec<usize>, Vec<u8>)> = rec
        .0
        .into_inner()
        .into_iter()
        .map(|(name, mut shape, v)| {
            let conv1d = name.contains("qkv") || name.contains("proj_out");
            if conv1d && shape.len() == 4 {
                shape.pop();
            }
            let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            (format!("model.{name}"), shape, bytes)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = entries
        .iter()
        .map(|(n, s, b)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .unwrap();
            (n.clone(), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

#[test]
fn a_torchcfm_state_dict_file_loads_like_its_weights() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.safetensors");
    write_torchcfm_file(UNetConfig::tiny(), &path);
    let dev = Default::default();
    let from_file: UNet<Flex> = UNetConfig::tiny()
        .init::<Flex>(&dev)
        .unwrap()
        .load_torchcfm(&path, &dev)
        .unwrap();
    let from_params: UNet<Flex> = UNetConfig::tiny()
        .init::<Flex>(&dev)
        .unwrap()
        .load_torchcfm_params(&SyntheticTorchParams, &dev)
        .unwrap();
    let store = SafetensorsStore::open_single(format!("{DIR}/unet_tiny.safetensors")).unwrap();
    let x = tensor::<Flex, 4>(&store, "input.x");
    let t = tensor::<Flex, 1>(&store, "input.t");
    let a = host(from_file.forward(x.clone(), t.clone()));
    let b = host(from_params.forward(x, t));
    assert_eq!(a, b);
}
