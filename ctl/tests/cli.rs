//! The `swarmctl` binary end to end: against a missing or dead socket, and against an
//! in-test Control server (a minimal fake manager) on a Unix socket in a tempdir.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use swarm_proto::control_server::{Control, ControlServer};
use swarm_proto::service_spec::Mode;
use swarm_proto::task_spec::Runtime;
use swarm_proto::*;
use tonic::{Request, Response, Status};

/// Runs the compiled binary with `args` against `socket`.
async fn swarmctl(socket: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_swarmctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("SWARM_SOCKET")
        .output()
        .await
        .expect("run swarmctl")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// ---------------------------------------------------------------------------------------
// A fake manager: services in memory; every created replicated service gets its tasks
// RUNNING at once, so a non-detached create converges.

#[derive(Default)]
struct FakeState {
    services: Vec<Service>,
    tasks: Vec<Task>,
    /// Specs received by CreateService, in order.
    created: Vec<ServiceSpec>,
}

#[derive(Default)]
struct FakeManager {
    state: Mutex<FakeState>,
}

impl FakeManager {
    fn with_service(self, id: &str, name: &str, replicas: u64) -> Self {
        let spec = ServiceSpec {
            annotations: Some(Annotations {
                name: name.into(),
                ..Default::default()
            }),
            mode: Some(Mode::Replicated(ReplicatedService { replicas })),
            task: Some(TaskSpec {
                runtime: Some(Runtime::Wasm(WasmRuntime {
                    artifact: "hello:1".into(),
                    ..Default::default()
                })),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.state.lock().unwrap().services.push(Service {
            id: id.into(),
            meta: Some(Meta {
                version: 3,
                ..Default::default()
            }),
            spec: Some(spec),
            previous_spec: None,
        });
        self
    }

    fn find(&self, key: &str) -> Result<Service, Status> {
        let st = self.state.lock().unwrap();
        st.services
            .iter()
            .find(|s| {
                s.id == key
                    || s.spec
                        .as_ref()
                        .and_then(|x| x.annotations.as_ref())
                        .is_some_and(|a| a.name == key)
            })
            .cloned()
            .ok_or_else(|| Status::not_found(format!("service {key} not found")))
    }
}

type R<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Control for FakeManager {
    async fn get_node(&self, _: Request<GetNodeRequest>) -> R<GetNodeResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn list_nodes(&self, _: Request<ListNodesRequest>) -> R<ListNodesResponse> {
        Ok(Response::new(ListNodesResponse { nodes: vec![] }))
    }
    async fn update_node(&self, _: Request<UpdateNodeRequest>) -> R<UpdateNodeResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn remove_node(&self, _: Request<RemoveNodeRequest>) -> R<RemoveNodeResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn get_service(&self, r: Request<GetServiceRequest>) -> R<GetServiceResponse> {
        let service = self.find(&r.into_inner().service_id)?;
        Ok(Response::new(GetServiceResponse {
            service: Some(service),
        }))
    }
    async fn list_services(&self, _: Request<ListServicesRequest>) -> R<ListServicesResponse> {
        let services = self.state.lock().unwrap().services.clone();
        Ok(Response::new(ListServicesResponse { services }))
    }
    async fn create_service(&self, r: Request<CreateServiceRequest>) -> R<CreateServiceResponse> {
        let spec = r
            .into_inner()
            .spec
            .ok_or_else(|| Status::invalid_argument("no spec"))?;
        let mut st = self.state.lock().unwrap();
        st.created.push(spec.clone());
        let id = format!("newservice{:015}", st.created.len());
        let replicas = match spec.mode {
            Some(Mode::Replicated(r)) => r.replicas,
            _ => 0,
        };
        for slot in 1..=replicas {
            st.tasks.push(Task {
                id: format!("task{slot}"),
                service_id: id.clone(),
                slot,
                spec: spec.task.clone(),
                status: Some(TaskStatus {
                    state: TaskState::Running as i32,
                    ..Default::default()
                }),
                desired_state: TaskState::Running as i32,
                ..Default::default()
            });
        }
        let service = Service {
            id,
            meta: Some(Meta {
                version: 1,
                ..Default::default()
            }),
            spec: Some(spec),
            previous_spec: None,
        };
        st.services.push(service.clone());
        Ok(Response::new(CreateServiceResponse {
            service: Some(service),
        }))
    }
    async fn update_service(&self, _: Request<UpdateServiceRequest>) -> R<UpdateServiceResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn remove_service(&self, _: Request<RemoveServiceRequest>) -> R<RemoveServiceResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn get_task(&self, _: Request<GetTaskRequest>) -> R<GetTaskResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn list_tasks(&self, r: Request<ListTasksRequest>) -> R<ListTasksResponse> {
        let filter = r.into_inner().service_id;
        let tasks = self
            .state
            .lock()
            .unwrap()
            .tasks
            .iter()
            .filter(|t| filter.is_empty() || t.service_id == filter)
            .cloned()
            .collect();
        Ok(Response::new(ListTasksResponse { tasks }))
    }
    async fn remove_task(&self, _: Request<RemoveTaskRequest>) -> R<RemoveTaskResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn get_cluster(&self, _: Request<GetClusterRequest>) -> R<GetClusterResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn list_clusters(&self, _: Request<ListClustersRequest>) -> R<ListClustersResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn update_cluster(&self, _: Request<UpdateClusterRequest>) -> R<UpdateClusterResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn get_unlock_key(&self, _: Request<GetUnlockKeyRequest>) -> R<GetUnlockKeyResponse> {
        Err(Status::unimplemented("fake"))
    }
}

/// Serves `fake` on `<tempdir>/control.sock` until the test ends.
struct Served {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    fake: Arc<FakeManager>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn serve(fake: FakeManager) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let fake = Arc::new(fake);
    let svc = ControlServer::from_arc(fake.clone());
    let server = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener))
            .await
            .unwrap();
    });
    Served {
        _dir: dir,
        socket,
        fake,
        server,
    }
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn t10_missing_socket_exits_1_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nope/control.sock");
    let out = swarmctl(&socket, &["service", "ls"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: cannot reach the manager at {}: no such file (is swarm-manager running? set --socket or SWARM_SOCKET)\n",
            socket.display()
        )
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn t11_socket_without_manager_says_it_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let out = swarmctl(&socket, &["node", "ls"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("connection refused (the manager is down"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn t12_bad_flag_values_are_usage_errors_before_connecting() {
    let socket = Path::new("/nonexistent/control.sock");
    let out = swarmctl(
        socket,
        &["service", "create", "--limit-memory", "12XB", "hello:1"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .starts_with("error: invalid --limit-memory \"12XB\": unknown unit \"XB\""),
        "{}",
        text(&out.stderr)
    );
    let out = swarmctl(
        socket,
        &["service", "create", "--mode", "sometimes", "hello:1"],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap's own usage errors exit 2 too"
    );
}

#[tokio::test]
async fn t20_service_ls_json_prints_the_services() {
    let served = serve(FakeManager::default().with_service("abcdefabcdefabcdefabcdef0", "web", 3));
    let out = swarmctl(&served.socket, &["service", "ls", "--format", "json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = json.as_array().expect("a JSON array");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], "abcdefabcdefabcdefabcdef0");
    assert_eq!(list[0]["spec"]["annotations"]["name"], "web");
    assert_eq!(list[0]["spec"]["mode"]["replicated"]["replicas"], 3);
    assert_eq!(
        list[0]["spec"]["task"]["runtime"]["wasm"]["artifact"],
        "hello:1"
    );

    let out = swarmctl(&served.socket, &["service", "ls"]).await;
    assert!(out.status.success());
    let table = text(&out.stdout);
    assert!(
        table.starts_with("ID             NAME      MODE         REPLICAS   IMAGE     PORTS\n"),
        "{table}"
    );
    assert!(
        table.contains("abcdefabcdef   web       replicated   0/3        hello:1"),
        "{table}"
    );
}

#[tokio::test]
async fn t21_service_create_detached_sends_the_spec_and_prints_the_id() {
    let served = serve(FakeManager::default());
    let out = swarmctl(
        &served.socket,
        &[
            "service",
            "create",
            "-d",
            "--name",
            "web",
            "--replicas",
            "2",
            "-e",
            "GREETING=hi",
            "--limit-memory",
            "64MiB",
            "--constraint",
            "node.role==worker",
            "-p",
            "8080:80",
            "hello:1",
            "--verbose",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "newservice000000000000001\n");
    assert!(
        out.stderr.is_empty(),
        "detached: no progress: {}",
        text(&out.stderr)
    );

    let created = served.fake.state.lock().unwrap().created.clone();
    assert_eq!(created.len(), 1);
    let spec = &created[0];
    assert_eq!(spec.annotations.as_ref().unwrap().name, "web");
    assert_eq!(
        spec.mode,
        Some(Mode::Replicated(ReplicatedService { replicas: 2 }))
    );
    let task = spec.task.as_ref().unwrap();
    let Some(Runtime::Wasm(w)) = &task.runtime else {
        panic!("not wasm: {task:?}")
    };
    assert_eq!(w.artifact, "hello:1");
    assert_eq!(w.args, ["--verbose"]);
    assert_eq!(w.env, ["GREETING=hi"]);
    assert_eq!(
        task.resources.unwrap().limits.unwrap().memory_bytes,
        64 << 20
    );
    assert_eq!(
        task.placement.as_ref().unwrap().constraints,
        ["node.role==worker"]
    );
    let port = &spec.endpoint.as_ref().unwrap().ports[0];
    assert_eq!((port.published_port, port.target_port), (8080, 80));
}

#[tokio::test]
async fn t22_service_create_waits_until_converged() {
    let served = serve(FakeManager::default());
    let out = swarmctl(
        &served.socket,
        &[
            "service",
            "create",
            "--name",
            "web",
            "--replicas",
            "2",
            "hello:1",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "newservice000000000000001\n",
        "progress stays off stdout"
    );
    let progress = text(&out.stderr);
    assert!(
        progress.contains("overall progress: 2 out of 2 tasks\n"),
        "{progress}"
    );
    assert!(
        progress.ends_with("verify: Service converged\n"),
        "{progress}"
    );
}

#[tokio::test]
async fn t23_server_errors_print_their_message_and_exit_1() {
    let served = serve(FakeManager::default());
    let out = swarmctl(&served.socket, &["service", "inspect", "nope"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "error: service nope not found\n");
    let out = swarmctl(&served.socket, &["service", "rm", "web"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "error: fake\n");
}
