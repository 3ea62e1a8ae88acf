//! `svcnet-crdgen [DIR]`: writes every CRD's YAML into DIR (default `crds/yaml`).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("yaml"));
    std::fs::create_dir_all(&dir)?;
    for (file, crd) in svcnet_crds::all() {
        std::fs::write(dir.join(&file), svcnet_crds::to_yaml(&crd)?)?;
        println!("wrote {}", dir.join(file).display());
    }
    Ok(())
}
