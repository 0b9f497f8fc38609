import CMalloc

/// Hands the heap's free memory back to the system after the inventory's big transient allocations
/// (a scan's descriptions and bodies, a batch of layouts, a health look at every GPU). glibc keeps
/// freed memory in its arenas; at 4096 GPUs that was a third of graced's resident memory.
public enum HeapTrim {
    /// Returns freed memory at the top and inside each arena (`malloc_trim(0)`).
    public static func now() {
        _ = malloc_trim(0)
    }

    /// At most `arenas` malloc arenas (each thread that allocates while another holds its arena
    /// gets a new one, up to 8 per core, and each keeps its own free memory), and blocks of
    /// `mmapAbove` bytes or more mapped on their own, so that freeing one returns it at once. glibc
    /// raises that threshold each time such a block is freed, after which each snapshot's list (3.7 MB
    /// at 4096 GPUs, replaced at every health look) came from an arena and its pages stayed.
    /// Call before threads start.
    public static func configure(arenas: Int32, mmapAbove: Int32) {
        _ = mallopt(M_ARENA_MAX, arenas)
        _ = mallopt(M_MMAP_THRESHOLD, mmapAbove)
    }
}
