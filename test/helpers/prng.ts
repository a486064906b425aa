// A seeded pseudo-random generator (xorshift32) for the fuzz tests: a failing run is replayed from the
// seed it prints. Numbers in [0, 1).
export function prng(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s / 0x100000000
  }
}
