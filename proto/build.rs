//! Generates the prost messages and tonic services from `proto/swarm/*.proto`.

const PROTOS: &[&str] = &[
    "proto/swarm/types.proto",
    "proto/swarm/specs.proto",
    "proto/swarm/objects.proto",
    "proto/swarm/raft.proto",
    "proto/swarm/control.proto",
    "proto/swarm/dispatcher.proto",
    "proto/swarm/artifact.proto",
    "proto/swarm/logs.proto",
    "proto/swarm/ca.proto",
];

/// Enum-typed fields (prost stores them as i32) that JSON output should show by name.
const ENUM_FIELDS: &[(&str, &str)] = &[
    (".swarm.TaskStatus.state", "task_state"),
    (".swarm.Task.desired_state", "task_state"),
    (".swarm.NodeSpec.desired_role", "node_role"),
    (".swarm.NodeSpec.availability", "node_availability"),
    (".swarm.Node.role", "node_role"),
    (".swarm.NodeStatus.state", "node_state"),
    (".swarm.RestartPolicy.condition", "restart_condition"),
    (
        ".swarm.UpdateConfig.failure_action",
        "update_failure_action",
    ),
    (".swarm.UpdateConfig.order", "update_order"),
    (".swarm.Artifact.kind", "artifact_kind"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The vendored protoc means no system package is needed to build.
    let mut prost_config = prost_build::Config::new();
    prost_config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    let mut builder = tonic_prost_build::configure()
        .type_attribute(".swarm", "#[derive(serde::Serialize)]")
        .type_attribute(".swarm", "#[serde(rename_all = \"snake_case\")]");
    for (field, with) in ENUM_FIELDS {
        builder = builder.field_attribute(
            field,
            format!("#[serde(serialize_with = \"crate::json::{with}\")]"),
        );
    }
    builder.compile_with_config(prost_config, PROTOS, &["proto"])?;
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    Ok(())
}
