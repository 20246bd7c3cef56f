import CLinux

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as ext4, iSCSI and etcd's WAL use:
/// better at catching the burst errors of a torn sector than the IEEE polynomial. Computed in C
/// (`kv_crc32c`: the SSE4.2 instruction, or a table where the CPU lacks it).
public enum CRC32C {
    public static func checksum(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { kv_crc32c(seed, $0.baseAddress, $0.count) }
    }

    public static func checksum(_ bytes: ArraySlice<UInt8>, seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { kv_crc32c(seed, $0.baseAddress, $0.count) }
    }
}
