// Math.random, replaced by xoshiro128** seeded by the driver (__bs.reseed, installed by
// 90-driver.js) or, failing that, by the host on the first draw: every VM is a clone of one
// snapshot, so QuickJS's own seed would give every VM the same sequence.

// QuickJS seeds Math.random when the context is created, and every VM is a clone of the same
// snapshot, so every VM would draw the same sequence. xoshiro128** seeded by the driver
// (__bs.reseed) replaces it; if the driver never reseeds, the first draw seeds from the host.
// The state lives in four closure variables: typed-array access costs 3x as much here.
let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
let rngSeeded = false;
// The driver reseeds before every step, and most steps never draw: the seed is checked at once
// but folded into the state only at the step's first draw (the fold, parseInt and all, was the
// dearest part of a warm event's start). The sequence is the same as if folded at once.
let pendingSeed = null;

function reseed(hex) {
  const s = String(hex);
  if (!/^[0-9a-fA-F]{64}$/.test(s)) {
    throw new TypeError("__bs.reseed expects 32 bytes written as 64 hex digits");
  }
  pendingSeed = s;
  rngSeeded = true;
}

function applySeed(s) {
  const word = (i) => parseInt(s.slice(i * 8, i * 8 + 8), 16);
  // Fold 256 bits into 128, the second half through MurmurHash3's mixer, so that seeds with
  // structure (repeated halves, runs of zeros) still give unrelated states.
  const state = (i) => word(i) ^ fmix32(word(i + 4) + Math.imul(i + 1, 0x9e3779b9));
  [s0, s1, s2, s3] = [state(0), state(1), state(2), state(3)];
  // The all-zero state is a fixed point of xoshiro: it would return 0 forever.
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1;
}

const imul = Math.imul;

// MurmurHash3's finalizer.
function fmix32(h) {
  h ^= h >>> 16;
  h = imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function nextUint32() {
  const x = imul(s1, 5);
  const result = imul((x << 7) | (x >>> 25), 9);
  const t = s1 << 9;
  s2 ^= s0;
  s3 ^= s1;
  s1 ^= s2;
  s0 ^= s3;
  s2 ^= t;
  s3 = (s3 << 11) | (s3 >>> 21);
  return result >>> 0;
}

Math.random = function random() {
  if (!rngSeeded) reseed(hexOf(hostBytes({ op: "random", n: 32 })));
  if (pendingSeed !== null) {
    const seed = pendingSeed;
    pendingSeed = null;
    applySeed(seed);
  }
  // 53 random bits, like V8, so every double in [0, 1) on the 2^-53 grid is reachable.
  const high = nextUint32() >>> 5;
  const low = nextUint32() >>> 6;
  return (high * 67108864 + low) / 9007199254740992;
};

const hexOf = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
