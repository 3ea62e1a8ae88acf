//! The checked-in CRD YAML is what the types generate (`make crds` regenerates it).

use std::path::Path;

#[test]
fn checked_in_crd_yaml_matches_the_rust_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("yaml");
    for (file, crd) in svcnet_crds::all() {
        let want = svcnet_crds::to_yaml(&crd).expect("CRD serializes");
        let have = std::fs::read_to_string(dir.join(&file)).unwrap_or_default();
        assert!(
            have == want,
            "crds/yaml/{file} is out of date with crds/src: run `make crds` and commit the result"
        );
    }
}
