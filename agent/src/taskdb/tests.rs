//! Task DB tests: records round-trip, group commit, reopen.

use swarm_proto::{Task, TaskState, TaskStatus};

use super::*;

fn task(id: &str) -> Task {
    Task {
        id: id.to_string(),
        service_id: "svc".into(),
        desired_state: TaskState::Running as i32,
        ..Default::default()
    }
}

fn status(state: TaskState) -> TaskStatus {
    TaskStatus {
        state: state as i32,
        message: format!("{state:?}"),
        ..Default::default()
    }
}

#[tokio::test]
async fn put_get_unassign_delete() {
    let dir = tempfile::tempdir().unwrap();
    let db = TaskDb::open(&dir.path().join("tasks.redb")).unwrap();
    db.write(vec![
        WriteOp::put_task(task("a")),
        WriteOp::put_task(task("b")),
    ])
    .await
    .unwrap();
    db.put_status("a", status(TaskState::Running))
        .await
        .unwrap();

    let a = db.get("a").await.unwrap().unwrap();
    assert_eq!(a.task, task("a"));
    assert!(a.assigned);
    assert_eq!(a.status, Some(status(TaskState::Running)));
    assert_eq!(db.get("b").await.unwrap().unwrap().status, None);

    db.write(vec![WriteOp::Unassign("b".into())]).await.unwrap();
    assert!(!db.get("b").await.unwrap().unwrap().assigned);

    db.write(vec![WriteOp::Delete("a".into())]).await.unwrap();
    assert_eq!(db.get("a").await.unwrap(), None);
    let ids: Vec<String> = db
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.task.id)
        .collect();
    assert_eq!(ids, ["b"]);
}

#[tokio::test]
async fn ops_on_unknown_tasks_leave_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = TaskDb::open(&dir.path().join("tasks.redb")).unwrap();
    db.write(vec![
        WriteOp::Unassign("ghost".into()),
        WriteOp::PutStatus("ghost".into(), status(TaskState::Running)),
    ])
    .await
    .unwrap();
    db.write(vec![WriteOp::put_task(task("ghost"))])
        .await
        .unwrap();
    let ghost = db.get("ghost").await.unwrap().unwrap();
    assert!(ghost.assigned);
    assert_eq!(ghost.status, None);
}

#[tokio::test(flavor = "current_thread")]
async fn concurrent_writes_share_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = TaskDb::open(&dir.path().join("tasks.redb")).unwrap();
    let ids: Vec<String> = (0..100).map(|i| format!("t{i:03}")).collect();
    db.write(ids.iter().map(|id| WriteOp::put_task(task(id))).collect())
        .await
        .unwrap();
    let before = db.commits();
    assert_eq!(before, 1, "a whole assignment set is one commit");

    // 100 task managers reporting at once, each several times: all queue before the writer
    // runs (current-thread runtime), so they share one commit and the last status wins.
    let writes = ids.iter().flat_map(|id| {
        [TaskState::Accepted, TaskState::Preparing, TaskState::Ready]
            .map(|s| db.put_status(id, status(s)))
    });
    for r in futures::future::join_all(writes).await {
        r.unwrap();
    }
    assert_eq!(db.commits() - before, 1);
    for t in db.list().await.unwrap() {
        assert_eq!(t.status, Some(status(TaskState::Ready)));
    }
}

#[tokio::test]
async fn reopen_after_close_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.redb");
    let db = TaskDb::open(&path).unwrap();
    db.write(vec![
        WriteOp::put_task(task("a")),
        WriteOp::put_task(task("b")),
    ])
    .await
    .unwrap();
    db.write(vec![WriteOp::Unassign("b".into())]).await.unwrap();
    db.put_status("a", status(TaskState::Running))
        .await
        .unwrap();
    db.close().await;

    let db = TaskDb::open(&path).unwrap();
    let all = db.list().await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].assigned && !all[1].assigned);
    assert_eq!(all[0].status, Some(status(TaskState::Running)));
    db.close().await;
}

#[tokio::test]
async fn a_second_open_of_the_same_file_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.redb");
    let _db = TaskDb::open(&path).unwrap();
    let err = TaskDb::open(&path).err().unwrap();
    assert!(err.to_string().contains("another swarm-agent"), "{err}");
}
