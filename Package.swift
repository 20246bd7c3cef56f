// swift-tools-version:6.1
import PackageDescription

// Layers (lower never imports higher):
//   executables: kvsupervisor, kvctl, kvnode         — argument parsing and wiring only
//   services:    Daemon, ControlCLI, NodeRuntime, RaftNode, ExperimentRunner
//   mechanisms:  Supervision, Faults, Events, Varlink, Systemd, ConfigFile, RaftStorage, Timing
//   pure logic:  Detection, Linearizability, Raft, KVStore, WAL, RaftSimulation, Experiments, TOML
//   vocabulary:  Core, BinaryCodec, SplitMix; C shims CLinux, CSystemd; test support ScenarioTesting
let package = Package(
    name: "kvsupervisor",
    products: [
        .executable(name: "kvsupervisor", targets: ["kvsupervisor"]),
        .executable(name: "kvctl", targets: ["kvctl"]),
        .executable(name: "kvnode", targets: ["kvnode"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        // Traits off: the default FullFoundation trait imports Foundation, whose ICU data would add
        // tens of MB to kvnode; FoundationEssentials is enough for routing and bodies.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // Vocabulary: ids, times, events, faults, config model. No I/O.
        .target(name: "Core"),
        // Linux syscalls that Swift cannot call directly (variadic syscall(), prctl).
        .target(name: "CLinux"),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // libsystemd (sd_notify, the journal, listen fds) and the stderr fallback for diagnostics.
        .target(name: "Systemd", dependencies: ["CSystemd"]),
        .target(name: "Detection", dependencies: ["Core"]),
        // Linearizability checking of recorded histories (Wing-Gong search, Lowe's cache, per key). No I/O.
        .target(name: "Linearizability", dependencies: ["SplitMix"]),
        // SplitMix64, the one seeded generator (Raft's timeouts, the simulator, sweep plans, the checker's hashes).
        .target(name: "SplitMix"),
        // The Raft consensus core: a pure state machine driven by ticks and messages. No I/O.
        .target(name: "Raft", dependencies: ["SplitMix"]),
        // The replicated store's state machine (put, get, delete, CAS, mput; dedup by client and seq;
        // snapshots) and its binary entry format. No I/O.
        .target(name: "KVStore", dependencies: ["BinaryCodec"]),
        // LEB128 integers, length-prefixed strings and bytes; strict decoding (bad bytes throw).
        .target(name: "BinaryCodec"),
        // The write-ahead log's record format (length, CRC-32C, type, payload) and its scanner: a
        // torn tail is told from corruption before the tail. Segment files and fsync come with kvnode.
        .target(name: "WAL", dependencies: ["CLinux"]),
        // The node's disk: WAL segment files (fdatasync, preallocated), atomic snapshot files, recovery
        // that truncates a torn tail and refuses corruption before it.
        .target(name: "RaftStorage", dependencies: ["Core", "Raft", "WAL", "BinaryCodec", "CLinux"]),
        // The deterministic simulator: Raft replicas running KVStore over a faulty network and disk,
        // with retrying clients; the invariants; election-time trials. Used by tests and `kvctl sim`.
        .target(name: "RaftSimulation", dependencies: [
            "Core", "Raft", "KVStore", "BinaryCodec", "Linearizability", "SplitMix", .product(name: "HeapModule", package: "swift-collections"),
        ]),
        // Primary-backup mode's coordinator (the original's name manager) as a pure state machine.
        .target(name: "PrimaryBackup", dependencies: ["Core", "KVStore"]),
        // kvnode's primary-backup runtimes: a storage node (the store's HTTP API over an in-memory
        // copy, the replication stream, beats) and the coordinator (checks, assignments, events).
        .target(name: "PrimaryBackupNode", dependencies: [
            "PrimaryBackup", "KVStore", "Raft", "RaftNode", "NodeClient", "NodeRuntime", "Core", "Timing", "Systemd",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // Experiment specs (TOML), the sweep's plan of trials, the statistics its reports use. No I/O.
        .target(name: "Experiments", dependencies: ["TOML", "Core", "SplitMix", "Linearizability"]),
        // Runs experiments for the daemon: a cluster per cell, trials, run directories, resume.
        .target(name: "ExperimentRunner", dependencies: [
            "Experiments", "ConfigFile", "TOML", "Core", "Events", "Faults", "Supervision", "NodeClient", "Linearizability", "SplitMix",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        // One HTTP/1.1 request to a kvnode (NIOHTTP1), its answer stamped on arrival: kvctl and the
        // failover experiment's client.
        .target(name: "NodeClient", dependencies: [
            "Core",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // TOML 1.0 (its own parser: TOMLKit imported Foundation, whose ICU data was 45 MB of the daemon)
        // and ConfigError, the error of a file read with it (file, line, key). No I/O.
        .target(name: "TOML"),
        // The config file -> ClusterConfig.
        .target(name: "ConfigFile", dependencies: ["Core", "TOML"]),
        // Exact wake-ups (sleep, then spin the last stretch) and detached OS threads.
        .target(name: "Timing", dependencies: ["Core", "CLinux"]),
        .target(name: "Supervision", dependencies: [
            "Core", "CLinux", "Timing",
        ]),
        .target(name: "Events", dependencies: ["Core", "Systemd", "Timing"]),
        .target(name: "Faults", dependencies: [
            "Core", "CLinux", "Supervision", "Timing",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .target(name: "Varlink", dependencies: [
            "CLinux",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .target(name: "Daemon", dependencies: [
            "Core", "CLinux", "ConfigFile", "TOML", "Supervision", "Faults", "Events", "Varlink", "Systemd", "ExperimentRunner",
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ], exclude: ["io.kvsupervisor.varlink"]),
        .target(name: "NodeRuntime", dependencies: [
            "Core", "Detection", "Systemd", "CLinux", "Timing",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // kvnode's raft mode: the loop that carries Raft's Ready out against RaftStorage, the peer
        // transport (binary frames over TCP), the HTTP API (HummingbirdCore), role events.
        .target(name: "RaftNode", dependencies: [
            "Raft", "KVStore", "RaftStorage", "BinaryCodec", "WAL", "Core", "Systemd", "CLinux", "Timing", "NodeRuntime",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "ControlCLI", dependencies: [
            "Core", "ConfigFile", "Varlink", "Linearizability", "Raft", "RaftSimulation", "NodeClient", "Experiments",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .executableTarget(name: "kvsupervisor", dependencies: [
            "Daemon", "Core", "Systemd", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "kvctl", dependencies: ["ControlCLI"]),
        .executableTarget(name: "kvnode", dependencies: [
            "NodeRuntime", "Detection", "RaftNode", "PrimaryBackupNode", "RaftStorage", "Core", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "CoreTests", dependencies: ["Core"]),
        .testTarget(name: "RaftTests", dependencies: ["Core", "Raft", "KVStore", "RaftSimulation", "ScenarioTesting"], exclude: ["testdata"]),
        .testTarget(name: "KVStoreTests", dependencies: ["KVStore", "BinaryCodec"]),
        .testTarget(name: "RaftNodeTests", dependencies: [
            "RaftNode", "Raft", "KVStore", "Core", "RaftStorage", "BinaryCodec", .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "ExperimentsTests", dependencies: ["Experiments", "TOML", "SplitMix", "Core", "Linearizability"]),
        .testTarget(name: "ExperimentRunnerTests", dependencies: ["ExperimentRunner", "Core"]),
        .testTarget(name: "WALTests", dependencies: ["WAL", "RaftStorage", "Raft"]),
        .testTarget(name: "LinearizabilityTests", dependencies: ["Linearizability", "ScenarioTesting"], exclude: ["testdata"]),
        .testTarget(name: "DetectionTests", dependencies: ["Detection", "Core", "ScenarioTesting"]),
        .testTarget(name: "ConfigFileTests", dependencies: ["ConfigFile", "TOML", "Core"]),
        // Scenario scripts (etcd-raft datadriven style) for the pure cores' tests.
        .target(name: "ScenarioTesting", dependencies: ["RaftSimulation"], path: "Tests/ScenarioTesting"),
        .testTarget(name: "SupervisionTests", dependencies: ["Supervision", "Core", "ScenarioTesting"],
                    exclude: ["testdata"]),
        .testTarget(name: "FaultsTests", dependencies: ["Faults", "Core", "ScenarioTesting"], exclude: ["testdata"]),
        .testTarget(name: "EventsTests", dependencies: ["Events", "Core"]),
        .testTarget(name: "PrimaryBackupTests", dependencies: ["PrimaryBackup", "Core", "KVStore", "ScenarioTesting"], exclude: ["testdata"]),
        .testTarget(name: "TimingTests", dependencies: ["Timing", "Core"]),
        .testTarget(name: "ControlCLITests", dependencies: ["ControlCLI", "Core"]),
        .testTarget(name: "VarlinkTests", dependencies: [
            "Varlink", "Daemon",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
