//! The reporter's bookkeeping, pure: the latest status per task, which of them still need to
//! reach the dispatcher, and what a send, an ack, a failure or a new session do to that.
//!
//! Each recorded status gets a sequence number. A batch remembers the sequence numbers it
//! carried, so an ack clears an entry only if nothing newer was recorded meanwhile, and a failed
//! send re-queues only statuses that were not superseded.

use std::collections::{HashMap, VecDeque};

use swarm_proto::{TaskStatus, TaskStatusUpdate};

/// Latest status per task plus the queue of those not yet acknowledged.
#[derive(Debug, Default)]
pub struct StatusQueue {
    entries: HashMap<String, Entry>,
    /// Ids with `queued == true`, oldest first.
    order: VecDeque<String>,
    next_seq: u64,
}

#[derive(Debug)]
struct Entry {
    status: TaskStatus,
    seq: u64,
    /// Waiting in `order` to be sent.
    queued: bool,
    /// Part of a batch whose result is not known yet.
    in_flight: bool,
    /// The task is gone: drop the entry once its last status is acknowledged, and do not
    /// re-send it on a new session.
    forgotten: bool,
}

/// What one batch carried: task ids and the sequence numbers of their statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent(Vec<(String, u64)>);

impl Sent {
    /// Number of statuses in the batch.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty batch.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl StatusQueue {
    /// Records the task's latest status and queues it. A status behind the one already held
    /// (lower state) is ignored: states never go backwards.
    pub fn record(&mut self, id: &str, status: TaskStatus) {
        self.next_seq += 1;
        let seq = self.next_seq;
        match self.entries.get_mut(id) {
            Some(e) if status.state < e.status.state => {}
            Some(e) => {
                e.status = status;
                e.seq = seq;
                e.forgotten = false;
                if !e.queued {
                    e.queued = true;
                    self.order.push_back(id.to_string());
                }
            }
            None => {
                self.entries.insert(
                    id.to_string(),
                    Entry {
                        status,
                        seq,
                        queued: true,
                        in_flight: false,
                        forgotten: false,
                    },
                );
                self.order.push_back(id.to_string());
            }
        }
    }

    /// The task is gone: its entry goes once its last status is acknowledged.
    pub fn forget(&mut self, id: &str) {
        if let Some(e) = self.entries.get_mut(id) {
            e.forgotten = true;
            if !e.queued && !e.in_flight {
                self.entries.remove(id);
            }
        }
    }

    /// Takes up to `max` queued statuses, oldest first, for one send.
    pub fn take_batch(&mut self, max: usize) -> (Vec<TaskStatusUpdate>, Sent) {
        let mut updates = Vec::new();
        let mut sent = Vec::new();
        while updates.len() < max {
            let Some(id) = self.order.pop_front() else {
                break;
            };
            let Some(e) = self.entries.get_mut(&id) else {
                continue;
            };
            e.queued = false;
            e.in_flight = true;
            updates.push(TaskStatusUpdate {
                task_id: id.clone(),
                status: Some(e.status.clone()),
            });
            sent.push((id, e.seq));
        }
        (updates, Sent(sent))
    }

    /// The dispatcher acknowledged a batch.
    pub fn acked(&mut self, sent: Sent) {
        for (id, _) in sent.0 {
            if let Some(e) = self.entries.get_mut(&id) {
                e.in_flight = false;
                if e.forgotten && !e.queued {
                    self.entries.remove(&id);
                }
            }
        }
    }

    /// A batch was not acknowledged: queue its statuses again (in front, in their order),
    /// except those superseded meanwhile (already queued with the newer status).
    pub fn failed(&mut self, sent: Sent) {
        for (id, _) in sent.0.into_iter().rev() {
            if let Some(e) = self.entries.get_mut(&id) {
                e.in_flight = false;
                if !e.queued {
                    e.queued = true;
                    self.order.push_front(id);
                }
            }
        }
    }

    /// A new session: queue the latest status of every task again (the dispatcher ignores the
    /// ones it already has; the ones a dead manager lost get re-reported).
    pub fn resync(&mut self) {
        let mut ids: Vec<&String> = self
            .entries
            .iter_mut()
            .filter(|(_, e)| !e.queued)
            .map(|(id, e)| {
                e.queued = true;
                id
            })
            .collect();
        ids.sort_unstable();
        self.order.extend(ids.into_iter().cloned());
    }

    /// Statuses waiting to be sent (not counting those in flight).
    pub fn queued_len(&self) -> usize {
        self.order.len()
    }

    /// Statuses not yet acknowledged (queued or in flight).
    pub fn unacked_len(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.queued || e.in_flight)
            .count()
    }

    /// The latest status held for a task.
    pub fn latest(&self, id: &str) -> Option<&TaskStatus> {
        self.entries.get(id).map(|e| &e.status)
    }
}

#[cfg(test)]
mod tests {
    use swarm_proto::TaskState;

    use super::*;

    fn st(state: TaskState, msg: &str) -> TaskStatus {
        TaskStatus {
            state: state as i32,
            message: msg.into(),
            ..Default::default()
        }
    }

    fn sent_ids(updates: &[TaskStatusUpdate]) -> Vec<(&str, &str)> {
        updates
            .iter()
            .map(|u| {
                (
                    u.task_id.as_str(),
                    u.status.as_ref().unwrap().message.as_str(),
                )
            })
            .collect()
    }

    #[test]
    fn many_statuses_of_one_task_coalesce_into_the_last() {
        let mut q = StatusQueue::default();
        for (i, s) in [
            TaskState::Accepted,
            TaskState::Preparing,
            TaskState::Running,
        ]
        .into_iter()
        .enumerate()
        {
            q.record("a", st(s, &format!("m{i}")));
        }
        q.record("b", st(TaskState::Accepted, "b"));
        assert_eq!(q.queued_len(), 2);
        let (updates, sent) = q.take_batch(10);
        assert_eq!(sent_ids(&updates), [("a", "m2"), ("b", "b")]);
        q.acked(sent);
        assert_eq!(q.unacked_len(), 0);
        assert_eq!(q.take_batch(10).0.len(), 0);
    }

    #[test]
    fn backwards_statuses_are_ignored() {
        let mut q = StatusQueue::default();
        q.record("a", st(TaskState::Running, "run"));
        q.record("a", st(TaskState::Accepted, "old"));
        assert_eq!(q.latest("a").unwrap().message, "run");
    }

    #[test]
    fn ack_keeps_a_status_superseded_while_in_flight() {
        let mut q = StatusQueue::default();
        q.record("a", st(TaskState::Starting, "starting"));
        let (_, sent) = q.take_batch(10);
        q.record("a", st(TaskState::Running, "running"));
        q.acked(sent);
        let (updates, _) = q.take_batch(10);
        assert_eq!(sent_ids(&updates), [("a", "running")]);
    }

    #[test]
    fn failure_requeues_in_front_unless_superseded() {
        let mut q = StatusQueue::default();
        q.record("a", st(TaskState::Running, "a1"));
        q.record("b", st(TaskState::Running, "b1"));
        let (_, sent) = q.take_batch(10);
        q.record("c", st(TaskState::Running, "c1"));
        q.record("b", st(TaskState::Complete, "b2"));
        q.failed(sent);
        let (updates, _) = q.take_batch(10);
        assert_eq!(sent_ids(&updates), [("a", "a1"), ("c", "c1"), ("b", "b2")]);
    }

    #[test]
    fn batches_are_capped() {
        let mut q = StatusQueue::default();
        for i in 0..5 {
            q.record(&format!("t{i}"), st(TaskState::Running, "r"));
        }
        assert_eq!(q.take_batch(2).0.len(), 2);
        assert_eq!(q.queued_len(), 3);
    }

    #[test]
    fn resync_requeues_everything_known_but_forgotten_tasks_leave_after_ack() {
        let mut q = StatusQueue::default();
        q.record("a", st(TaskState::Running, "a"));
        q.record("gone", st(TaskState::Shutdown, "g"));
        q.forget("gone");
        let (_, sent) = q.take_batch(10);
        q.acked(sent);
        assert_eq!(q.latest("gone"), None, "forgotten + acked = dropped");
        q.resync();
        let (updates, _) = q.take_batch(10);
        assert_eq!(sent_ids(&updates), [("a", "a")]);
    }

    #[test]
    fn a_forgotten_task_whose_send_failed_is_still_delivered() {
        let mut q = StatusQueue::default();
        q.record("gone", st(TaskState::Shutdown, "g"));
        let (_, sent) = q.take_batch(10);
        q.forget("gone");
        q.failed(sent);
        let (updates, sent) = q.take_batch(10);
        assert_eq!(sent_ids(&updates), [("gone", "g")]);
        q.acked(sent);
        assert_eq!(q.latest("gone"), None);
    }
}
