//! Parses and resolves the package with `wit-parser` and checks each world's contract.

use super::*;
use wit_parser::{Resolve, WorldId, WorldItem};

/// Resolves `wit/` (the package and its `deps/`) and returns the world named `name`.
fn world(name: &str) -> (Resolve, WorldId) {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_dir(WIT_DIR)
        .unwrap_or_else(|e| panic!("cannot resolve the WIT package in {WIT_DIR}: {e:?}"));
    assert_eq!(resolve.packages[package].name.to_string(), PACKAGE);
    let world = resolve
        .select_world(&[package], Some(name))
        .unwrap_or_else(|e| panic!("world {name} does not resolve: {e:?}"));
    (resolve, world)
}

/// The fully qualified names of the interfaces a world exports (or imports).
fn interfaces(resolve: &Resolve, world: WorldId, exports: bool) -> Vec<String> {
    let world = &resolve.worlds[world];
    let items = if exports {
        &world.exports
    } else {
        &world.imports
    };
    items
        .iter()
        .filter(|(_, item)| matches!(item, WorldItem::Interface { .. }))
        .map(|(key, _)| resolve.name_world_key(key))
        .collect()
}

#[test]
fn t10_command_exports_wasi_cli_run() {
    let (resolve, world) = world(COMMAND);
    let exports = interfaces(&resolve, world, true);
    assert_eq!(exports, [format!("wasi:cli/run@{WASI_VERSION}")]);
    let imports = interfaces(&resolve, world, false);
    for wanted in [
        "wasi:cli/environment",
        "wasi:filesystem/preopens",
        "wasi:io/streams",
    ] {
        let wanted = format!("{wanted}@{WASI_VERSION}");
        assert!(
            imports.contains(&wanted),
            "command lacks import {wanted}: {imports:?}"
        );
    }
}

#[test]
fn t20_http_proxy_exports_incoming_handler() {
    let (resolve, world) = world(HTTP_PROXY);
    let exports = interfaces(&resolve, world, true);
    assert_eq!(
        exports,
        [format!("wasi:http/incoming-handler@{WASI_VERSION}")]
    );
    let imports = interfaces(&resolve, world, false);
    let wanted = format!("wasi:http/outgoing-handler@{WASI_VERSION}");
    assert!(
        imports.contains(&wanted),
        "http-proxy lacks import {wanted}: {imports:?}"
    );
}

#[test]
fn t30_unknown_world_is_an_error() {
    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_dir(WIT_DIR).expect("package resolves");
    let err = resolve
        .select_world(&[package], Some("swarm:task/nope"))
        .expect_err("no such world");
    assert!(
        format!("{err:?}").contains("nope"),
        "unexpected error: {err:?}"
    );
}
