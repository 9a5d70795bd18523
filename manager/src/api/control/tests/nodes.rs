//! Nodes (update, rm rules) and tasks (list filters and order, get, rm).

use super::*;

#[tokio::test]
async fn t40_node_rm_refuses_ready_nodes_without_force_and_managers_always() {
    let (api, store) = api().await;
    seed(
        &store,
        vec![
            store::create(node(
                "n1",
                "worker-1",
                NodeRole::Worker,
                NodeState::NodeReady,
            )),
            store::create(node(
                "n2",
                "worker-2",
                NodeRole::Worker,
                NodeState::NodeDown,
            )),
            store::create(node(
                "m1",
                "manager-1",
                NodeRole::Manager,
                NodeState::NodeReady,
            )),
        ],
    )
    .await;
    let rm = |node_id: &str, force| {
        api.remove_node(Request::new(RemoveNodeRequest {
            node_id: node_id.into(),
            force,
        }))
    };
    let e = rm("worker-1", false).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        e.message(),
        "node n1 (worker-1) is not down and can't be removed; stop it first or use --force"
    );
    let e = rm("m1", true).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message()
            .starts_with("node m1 (manager-1) is a manager; demote it first")
    );

    rm("worker-2", false).await.unwrap();
    rm("n1", true).await.unwrap();
    let left: Vec<_> = store.view().nodes().map(|n| n.id.clone()).collect();
    assert_eq!(left, ["m1"]);
}

#[tokio::test]
async fn t41_update_node_changes_spec_and_keeps_a_manager() {
    let (api, store) = api().await;
    seed(
        &store,
        vec![
            store::create(node(
                "n1",
                "worker-1",
                NodeRole::Worker,
                NodeState::NodeReady,
            )),
            store::create(node(
                "m1",
                "manager-1",
                NodeRole::Manager,
                NodeState::NodeReady,
            )),
        ],
    )
    .await;
    let n1 = store.view().node("n1").unwrap().clone();
    let drained = api
        .update_node(Request::new(UpdateNodeRequest {
            node_id: "worker-1".into(),
            node_version: version(&n1.meta),
            spec: Some(NodeSpec {
                availability: NodeAvailability::Drain as i32,
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .node
        .unwrap();
    assert_eq!(
        drained.spec.unwrap().availability,
        NodeAvailability::Drain as i32
    );
    assert_eq!(store.view().node("n1").unwrap().meta, drained.meta);

    let m1 = store.view().node("m1").unwrap().clone();
    let e = api
        .update_node(Request::new(UpdateNodeRequest {
            node_id: "m1".into(),
            node_version: version(&m1.meta),
            spec: Some(NodeSpec::default()), // desired_role: worker
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("is the last manager of the cluster"));
}

#[tokio::test]
async fn t50_list_tasks_filters_and_orders() {
    let (api, store) = api().await;
    seed(
        &store,
        vec![
            store::create(node(
                "n1",
                "worker-1",
                NodeRole::Worker,
                NodeState::NodeReady,
            )),
            store::create(node(
                "n2",
                "worker-2",
                NodeRole::Worker,
                NodeState::NodeReady,
            )),
        ],
    )
    .await;
    let web = create(&api, "web").await.id;
    let db = create(&api, "db").await.id;
    seed(
        &store,
        vec![
            store::create(task("t3", &web, 2, "n1", 10)),
            store::create(task("t2", &web, 1, "n2", 20)),
            store::create(task("t1", &web, 1, "n1", 5)),
            store::create(task("t4", &db, 1, "n2", 1)),
        ],
    )
    .await;
    let list = |service_id: &str, node_id: &str| {
        api.list_tasks(Request::new(ListTasksRequest {
            service_id: service_id.into(),
            node_id: node_id.into(),
        }))
    };
    let ids = |r: tonic::Response<ListTasksResponse>| {
        r.into_inner()
            .tasks
            .into_iter()
            .map(|t| t.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(list("web", "").await.unwrap()), ["t1", "t2", "t3"]);
    assert_eq!(ids(list("web", "worker-1").await.unwrap()), ["t1", "t3"]);
    assert_eq!(ids(list("", "n2").await.unwrap()), {
        let mut v = vec![("t2", &web), ("t4", &db)];
        v.sort_by_key(|(_, s)| s.to_string());
        v.into_iter().map(|(t, _)| t).collect::<Vec<_>>()
    });
    assert_eq!(ids(list("", "").await.unwrap()).len(), 4);
    assert_eq!(list("ghost", "").await.unwrap_err().code(), Code::NotFound);

    let got = api
        .get_task(Request::new(GetTaskRequest {
            task_id: "t4".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(got.service_id, db);
    api.remove_task(Request::new(RemoveTaskRequest {
        task_id: "t4".into(),
    }))
    .await
    .unwrap();
    assert!(store.view().task("t4").is_none());
}

#[test]
fn t45_manager_status_shows_the_live_leader_and_reachability() {
    use crate::raft::RaftStatus;
    let status = |raft_id, reachable| ManagerStatus {
        raft_id,
        addr: "127.0.0.1:1".into(),
        leader: true,
        reachable,
        catching_up: false,
    };
    let leader = RaftStatus {
        leader_id: 2,
        is_leader: true,
        active: vec![2, 3],
        ..Default::default()
    };
    // The stored flag is stale (1 led once); raft says 2 leads and 1 is not answering.
    let mut s = status(1, true);
    super::super::decide::live_manager_status(&mut s, &leader);
    assert!(!s.leader && !s.reachable, "{s:?}");
    let mut s = status(2, false);
    super::super::decide::live_manager_status(&mut s, &leader);
    assert!(s.leader && s.reachable, "{s:?}");
    // Without a leader nobody leads; a follower keeps the stored reachability.
    let mut s = status(2, true);
    super::super::decide::live_manager_status(&mut s, &RaftStatus::default());
    assert!(!s.leader && s.reachable, "{s:?}");
    // A learner is catching up until raft makes it a voter.
    let mut s = status(3, true);
    let learning = RaftStatus {
        learners: vec![3],
        ..leader.clone()
    };
    super::super::decide::live_manager_status(&mut s, &learning);
    assert!(s.reachable && s.catching_up, "{s:?}");
    super::super::decide::live_manager_status(&mut s, &leader);
    assert!(!s.catching_up, "{s:?}");
}
