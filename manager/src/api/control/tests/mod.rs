//! Control handlers over a store whose writes apply at once (`store::testing::store`),
//! grouped by area: services, nodes and tasks, the cluster.

use swarm_proto::control_server::Control;
use swarm_proto::*;
use tonic::{Code, Request};

use super::ControlApi;
use crate::api::validate::tests::good_spec;
use crate::store::{self, Store, testing};

mod cluster;
mod nodes;
mod services;

const TOKEN_DIGEST: &str = "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl";

/// The digest the artifact `hello:1.0` (which [`good_spec`] runs) is pushed with.
const HELLO_DIGEST: &str =
    "sha256:0101010101010101010101010101010101010101010101010101010101010101";

/// A Control API over an empty store holding the artifact `hello:1.0` (services pin it).
async fn api() -> (ControlApi, Store) {
    let store = testing::store();
    let hello = Artifact {
        id: "hello".into(),
        digest: HELLO_DIGEST.into(),
        size: 8,
        kind: ArtifactKind::ArtifactModule as i32,
        names: vec!["hello:1.0".into()],
        ..Default::default()
    };
    store
        .write_atomic(vec![store::create(hello)])
        .await
        .unwrap();
    (ControlApi::new(store.clone()), store)
}

async fn create(api: &ControlApi, name: &str) -> Service {
    api.create_service(Request::new(CreateServiceRequest {
        spec: Some(good_spec(name)),
    }))
    .await
    .unwrap()
    .into_inner()
    .service
    .unwrap()
}

fn version(meta: &Option<Meta>) -> u64 {
    meta.as_ref().unwrap().version
}

fn replicas(spec: &ServiceSpec) -> u64 {
    match spec.mode {
        Some(service_spec::Mode::Replicated(r)) => r.replicas,
        _ => panic!("not replicated"),
    }
}

fn scaled(name: &str, n: u64) -> ServiceSpec {
    let mut spec = good_spec(name);
    spec.mode = Some(service_spec::Mode::Replicated(ReplicatedService {
        replicas: n,
    }));
    spec
}

fn update_req(
    service_id: &str,
    service_version: u64,
    spec: Option<ServiceSpec>,
) -> UpdateServiceRequest {
    UpdateServiceRequest {
        service_id: service_id.into(),
        service_version,
        spec,
        rollback: false,
    }
}

fn node(id: &str, hostname: &str, role: NodeRole, state: NodeState) -> Node {
    Node {
        id: id.into(),
        spec: Some(NodeSpec {
            desired_role: role as i32,
            ..Default::default()
        }),
        description: Some(NodeDescription {
            hostname: hostname.into(),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            state: state as i32,
            ..Default::default()
        }),
        role: role as i32,
        ..Default::default()
    }
}

fn task(id: &str, service: &str, slot: u64, node: &str, created: i64) -> Task {
    Task {
        id: id.into(),
        service_id: service.into(),
        slot,
        node_id: node.into(),
        meta: Some(Meta {
            created_at_ns: created,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn cluster() -> Cluster {
    Cluster {
        id: "c0ffee".into(),
        spec: Some(ClusterSpec {
            annotations: Some(Annotations {
                name: "default".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        join_tokens: Some(JoinTokens {
            worker: format!("{TOKEN_DIGEST}-workersecret0000000000000"),
            manager: format!("{TOKEN_DIGEST}-managersecret000000000000"),
        }),
        ..Default::default()
    }
}

async fn seed(store: &Store, actions: Vec<StoreAction>) {
    store.write_atomic(actions).await.unwrap();
}
