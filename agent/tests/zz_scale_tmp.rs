use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use swarm_agent::exec::NullBackend;
use swarm_agent::reporter::{Reporter, ReportError, StatusSink};
use swarm_agent::taskdb::TaskDb;
use swarm_agent::worker::Worker;
use swarm_proto::{Task, TaskState, TaskStatus, TaskStatusUpdate};

struct Count(Arc<AtomicUsize>);
#[async_trait::async_trait]
impl StatusSink for Count {
    async fn send(&self, u: Vec<TaskStatusUpdate>) -> Result<(), ReportError> {
        let n = u.iter().filter(|u| u.status.as_ref().unwrap().state == TaskState::Running as i32).count();
        self.0.fetch_add(n, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale() {
    let agents: usize = std::env::var("AGENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(100);
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(NullBackend::new());
    let running = Arc::new(AtomicUsize::new(0));
    let mut workers = vec![];
    let mut dbs = vec![];
    let t0 = Instant::now();
    for a in 0..agents {
        let db = TaskDb::open(&dir.path().join(format!("{a}.redb"))).unwrap();
        let r = Reporter::spawn();
        r.connect(Arc::new(Count(running.clone())));
        let w = Worker::start(db.clone(), backend.clone(), r).await.unwrap();
        workers.push(w);
        dbs.push(db);
    }
    println!("started {agents} workers in {:?}", t0.elapsed());
    let t1 = Instant::now();
    let mut joins = vec![];
    for (a, w) in workers.iter().enumerate() {
        let tasks: Vec<Task> = (0..100).map(|i| Task { id: format!("a{a}t{i}"), desired_state: TaskState::Running as i32,
            status: Some(TaskStatus { state: TaskState::Assigned as i32, ..Default::default() }), ..Default::default() }).collect();
        joins.push(w.assign(tasks));
    }
    futures::future::join_all(joins).await;
    while running.load(Ordering::SeqCst) < agents * 100 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert!(t1.elapsed().as_secs() < 300);
    }
    let commits: u64 = dbs.iter().map(|d| d.commits()).sum();
    println!("{} tasks RUNNING in {:?}; {} commits ({:.1}/agent)", agents*100, t1.elapsed(), commits, commits as f64 / agents as f64);
    let t2 = Instant::now();
    for w in workers { w.stop().await; }
    for d in dbs { d.close().await; }
    println!("stopped in {:?}", t2.elapsed());
}
