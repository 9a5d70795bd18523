//! Checks that every generated path points at a wasm file of the expected kind.

use super::*;

const MAGIC: &[u8] = b"\0asm";
/// Version/layer bytes of a component (layer 1) and of a core module (version 1).
const COMPONENT: &[u8] = &[0x0d, 0x00, 0x01, 0x00];
const CORE_MODULE: &[u8] = &[0x01, 0x00, 0x00, 0x00];

fn header(path: &str) -> [u8; 8] {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read guest {path}: {e}"));
    bytes
        .get(..8)
        .and_then(|h| h.try_into().ok())
        .unwrap_or_else(|| panic!("guest {path} is only {} bytes long", bytes.len()))
}

#[test]
fn t10_every_guest_is_a_wasm_file() {
    assert_eq!(all().len(), 8, "one entry per const");
    for (name, path) in all() {
        assert!(
            std::path::Path::new(path).is_absolute(),
            "{name}: {path} is not absolute"
        );
        assert_eq!(
            &header(path)[..4],
            MAGIC,
            "{name}: {path} lacks the wasm magic"
        );
    }
}

#[test]
fn t20_wasip2_guests_are_components() {
    let p1 = [HELLO_P1, EXIT_CODE_P1];
    for (name, path) in all().iter().filter(|(_, path)| !p1.contains(path)) {
        assert_eq!(
            &header(path)[4..],
            COMPONENT,
            "{name}: {path} is not a component"
        );
    }
}

#[test]
fn t30_wasip1_guests_are_core_modules() {
    for path in [HELLO_P1, EXIT_CODE_P1] {
        assert_eq!(
            &header(path)[4..],
            CORE_MODULE,
            "{path} is not a core module"
        );
    }
}

#[test]
fn t40_names_match_consts() {
    let names: Vec<&str> = all().iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "hello",
            "sleeper",
            "echo_env",
            "exit_code",
            "crasher",
            "hog",
            "hello_p1",
            "exit_code_p1",
        ]
    );
    assert!(all().contains(&("hog", HOG)));
}
