//! Ending a worker by its process id (a stop at once, from the signal watcher): the child layer's
//! one kill rule (`child::kill_tree`), then the scratch folders of the external programs it
//! started, which it had no chance to remove.

/// Kills worker `pid`, everything descended from it and the groups they lead; then removes the
/// worker's scratch folders.
pub fn kill_tree(pid: u32) {
    crate::child::kill_tree(pid);
    crate::runtimes::external::remove_scratch(pid);
}
