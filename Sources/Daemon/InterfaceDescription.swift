/// The io.kvsupervisor Varlink interface. Must equal Sources/Daemon/io.kvsupervisor.varlink
/// byte for byte (a unit test checks): `make idl` regenerates this file from it.
enum InterfaceDescription {
    static let name = "io.kvsupervisor"
    static let text = #"""
# kvsupervisor: a fault-injection lab for replicated key-value stores.
# Control the supervised cluster, inject faults and follow events.
interface io.kvsupervisor

# A process's end: an exit status or the signal that killed it.
type ExitStatus (
  code: ?int,
  signal: ?string
)

type Node (
  id: string,
  pid: ?int,
  state: (starting, ready, stopped, paused, exited),
  port: int,
  restarts: int,
  last_exit: ?ExitStatus,
  raft: ?RaftStatus
)

# Raft mode: what the node last reported about its Raft groups: group 0's at the top level, and
# every group in groups when it runs more than one ([cluster] groups).
type RaftStatus (
  role: (follower, precandidate, candidate, leader),
  term: int,
  leader: ?string,
  commit_index: int,
  applied_index: int,
  groups: ?[]RaftGroupStatus
)

type RaftGroupStatus (
  id: int,
  role: (follower, precandidate, candidate, leader),
  term: int,
  leader: ?string,
  commit_index: int,
  applied_index: int
)

# One clock reading: wall milliseconds since the epoch and CLOCK_MONOTONIC nanoseconds.
type Stamp (
  wall_ms: int,
  mono_ns: int
)

# A fault in force (active) or waiting for its time (scheduled; due = requested + after_ms).
type Fault (
  fault_id: string,
  state: (active, scheduled),
  fault: string,
  node: string,
  affected: []string,
  requested: Stamp,
  due: ?Stamp,
  applied: ?Stamp,
  after_ms: ?int,
  for_ms: ?int,
  delay_ms: ?int,
  jitter_ms: ?int
)

# A setting a reload found changed: applied (at once, or by restarting the nodes) or refused, and why.
type SettingChange (
  key: string,
  old: string,
  new: string,
  outcome: (applied, refused),
  reason: string
)

# One event, as written to the JSONL log (schema version v = 1).
type Event (
  v: int,
  run_id: string,
  event: string,
  node: ?string,
  peer: ?string,
  t_wall_ms: int,
  t_mono_ns: int,
  silence_ms: ?float,
  last_heard_mono_ns: ?int,
  timeout_ms: ?int,
  t_fail_mono_ns: ?int,
  detection_latency_ms: ?float,
  detector_overshoot_ms: ?float,
  label: ?string,
  fault_id: ?string,
  fault: ?string,
  requested: ?Stamp,
  applied: ?Stamp,
  effect: ?Stamp,
  apply_ns: ?int,
  delay_ms: ?int,
  jitter_ms: ?int,
  for_ms: ?int,
  after_ms: ?int,
  peers: ?[]string,
  pid: ?int,
  exit_code: ?int,
  signal: ?string,
  restart_in_ms: ?int,
  reason: ?string,
  leader: ?string,
  term: ?int,
  since_lost_ms: ?float,
  changes: ?[]SettingChange,
  version: ?string,
  settings: ?[string]string,
  path: ?string,
  offset: ?int
)

# The supervisor's state and counts.
method GetStatus() -> (
  state: string,
  version: string,
  uptime_ms: int,
  nodes_ready: int,
  nodes_total: int,
  active_faults: int,
  scheduled_faults: int,
  run_id: string,
  mode: string,
  event_log: string,
  pid: int,
  config_file: ?string
)

method ListNodes() -> (nodes: []Node)

# Faults in force, then those scheduled, soonest first.
method ListFaults() -> (faults: []Fault)

# Re-reads the config file. Settings the supervisor reads as it acts are applied at once; those
# passed to each kvnode are applied by restarting the running nodes one at a time when
# restart_nodes is true, else refused; those read at start are refused. Same as SIGHUP (which
# never restarts nodes); config_reloaded lists the changes.
method Reload(restart_nodes: ?bool) -> (file: string, changes: []SettingChange, restarted: []string)

# Takes a scheduled fault back before its time (emits fault_cancelled).
method CancelFault(fault_id: string) -> (fault_id: string)

# Inject a fault: kill, stop, cont, term, delay, partition or restart.
# after_ms schedules it; a scheduled fault returns at once and its application is an event.
# node "leader" (raft mode) means the node that leads now; the reply names it and its term. With
# key, "leader" is the leader of the key's Raft group (sha256(key)[0] % groups); the reply names
# the group too.
method Inject(
  node: string,
  key: ?string,
  fault: string,
  after_ms: ?int,
  for_ms: ?int,
  delay_ms: ?int,
  jitter_ms: ?int,
  peers: ?[]string,
  direction: ?string
) -> (fault_id: string, applied_wall_ms: ?int, applied_mono_ns: ?int, node: ?string, term: ?int, group: ?int)

# End network faults (delay, partition) on one node, or everywhere.
method Heal(node: ?string) -> (healed: []string)

# Each returns the node as it is when the action is done (started: its process runs; it may not be ready yet).
method StartNode(node: string) -> (node: Node)
method StopNode(node: string) -> (node: Node)
method RestartNode(node: string) -> (node: Node)

# The most recent events, in the order they reached the supervisor (the log file is in t_mono_ns
# order); run_id keeps only that run's (the supervisor's, or an experiment's).
method ListEvents(limit: ?int, kinds: ?[]string, run_id: ?string) -> (events: []Event)

# Streams every event as it happens (call with "more": true). replay sends that many past events first.
method Subscribe(kinds: ?[]string, replay: ?int, run_id: ?string) -> (event: Event)

# One trial. A detection sweep's as the original injector printed it (wall ms since the epoch;
# outcome detected, missed or window); a failover trial's outcome says the write's fate and the
# recovery time in words, its times are in trials.csv.
type ExperimentTrial (
  t_fail: ?int,
  t_detect: ?int,
  detection_latency_ms: ?float,
  outcome: string
)

# One cell of a sweep beside theory (a fixed detector: uniform on [T - I, T], median T - I/2).
# false_positives counts every suspicion of a node that was up (kill trials' and delay windows').
# [ci_low_ms, ci_high_ms] covers the true median with probability ci_coverage, exactly (>= 0.95 from 6 trials).
type ExperimentCell (
  detector: string,
  hb_interval_ms: int,
  hb_timeout_ms: int,
  trials: int,
  missed: int,
  false_positives: int,
  median_ms: ?float,
  ci_low_ms: ?float,
  ci_high_ms: ?float,
  ci_coverage: ?float,
  p99_ms: ?float,
  theory_median_ms: ?float,
  mistakes_per_min: ?float,
  mean_mistake_ms: ?float,
  query_accuracy: ?float
)

# Progress of a run (state running), then its end (finished, cancelled or failed) with results:
# a detection sweep's cells, a failover or linearizability run's plain-text summary, and a
# linearizability run's verdict (linearizable, not-linearizable or unknown).
type ExperimentUpdate (
  run_id: string,
  state: string,
  session: int,
  done: int,
  total: int,
  cell: int,
  cells: int,
  cell_label: string,
  elapsed_ms: int,
  remaining_ms: ?int,
  directory: string,
  last_trial: ?ExperimentTrial,
  results: ?[]ExperimentCell,
  skipped: ?[]string,
  reason: ?string,
  summary: ?string,
  verdict: ?string
)

type ExperimentRun (
  run_id: string,
  kind: string,
  state: string,
  created_wall_ms: int,
  sessions: int,
  done: int,
  total: int,
  directory: string
)

# Runs an experiment spec (TOML text; file names it in errors). Call with "more": true: progress
# replies follow, the last one has the results. One experiment runs at a time; manual faults are
# refused while it runs. The run continues if the caller goes away.
method RunExperiment(spec: string, file: ?string) -> (
  run_id: string,
  state: string,
  session: int,
  done: int,
  total: int,
  cell: int,
  cells: int,
  cell_label: string,
  elapsed_ms: int,
  remaining_ms: ?int,
  directory: string,
  last_trial: ?ExperimentTrial,
  results: ?[]ExperimentCell,
  skipped: ?[]string,
  reason: ?string,
  summary: ?string,
  verdict: ?string
)

# Continues an interrupted, cancelled or failed run from its last finished trial, as a new session.
method ResumeExperiment(run_id: string) -> (
  run_id: string,
  state: string,
  session: int,
  done: int,
  total: int,
  cell: int,
  cells: int,
  cell_label: string,
  elapsed_ms: int,
  remaining_ms: ?int,
  directory: string,
  last_trial: ?ExperimentTrial,
  results: ?[]ExperimentCell,
  skipped: ?[]string,
  reason: ?string,
  summary: ?string,
  verdict: ?string
)

# Stops the running experiment (the named one, or whichever runs); it writes a partial report.
method CancelExperiment(run_id: ?string) -> (run_id: string)

method ListExperiments() -> (runs: []ExperimentRun)

# One run: its summary, its cells and its report.md.
method GetExperiment(run_id: string) -> (run: ExperimentRun, results: []ExperimentCell, report: string)

error NoSuchNode (node: string)
error NoLeader (reason: string)
error NoSuchFault (fault_id: string, reason: string)
error ReloadRefused (reason: string)
error InvalidFault (reason: string)
error NodeNotRunning (node: string, state: string)
error OperationFailed (reason: string)
error PermissionDenied (reason: string)
error ExperimentRunning (run_id: string)
error InvalidSpec (file: string, line: ?int, key: ?string, reason: string)
error NoSuchExperiment (run_id: string)
"""#
}
