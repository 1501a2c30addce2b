// A persistent hash trie of the CHAMP family (Steindorfer & Vinju, 2015),
// specialised for the store: entries are pointers to Versioned objects, nodes
// are shared between versions, and their memory is managed by the writer's
// Reclaimer through version intervals (versioned.h), not reference counts.
//
// Layout: a node holds a 32-bit data map and node map; its slots are the data
// entries in bit order followed by the sub-nodes in bit order. Below 64 bits
// of hash, a collision node holds its entries sorted by key. Deleting keeps
// the canonical form (a sub-node left with one entry is inlined into its
// parent), so a given content has exactly one shape and iteration order
// depends on the content alone.
//
// Writes copy only the path from the root to the change, and only where the
// path is published: a node born in the batch being built is seen by no
// snapshot yet and is changed in place. That is the transient (batch) mode:
// after the first write in a batch copies a path, later writes to it are in
// place. A copy is a malloc and a memcpy; no child is touched.
//
// Thread-safety: the mutating functions are for the writer thread only.
// Find, ForEach and Diff only read and may run on any thread on a tree that
// is reachable from a published snapshot (published nodes never change).
#pragma once

#include <cassert>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "state/internal/heap.h"
#include "state/internal/reclaimer.h"
#include "state/internal/trie_cursor.h"
#include "state/internal/versioned.h"

namespace kubefold::state::internal {

// Bit count of a 32-bit map. std::popcount compiles to a libgcc call on the
// baseline x86-64 target (no POPCNT instruction assumed); this is inline and
// branch-free.
inline unsigned PopCount(uint32_t v) {
  v = v - ((v >> 1) & 0x55555555u);
  v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
  return (((v + (v >> 4)) & 0x0f0f0f0fu) * 0x01010101u) >> 24;
}

struct Node : Versioned {
  uint32_t datamap = 0;
  uint32_t nodemap = 0;

  // Entries of a collision node; 0 for any other node. A collision node
  // (below 64 bits of hash) has no use for maps: it keeps its count in
  // datamap and all ones in nodemap. The two maps of any other node never
  // share a bit, so that tells them apart without a field of their own,
  // and a node's header is 16 bytes instead of 24 (every change copies
  // four or five nodes and history keeps them).
  unsigned count() const { return (datamap & nodemap) != 0 ? datamap : 0; }
  void set_count(uint32_t c) {
    datamap = c;
    nodemap = c != 0 ? ~uint32_t{0} : 0;
  }

  Versioned** slots() { return reinterpret_cast<Versioned**>(this + 1); }
  Versioned* const* slots() const { return reinterpret_cast<Versioned* const*>(this + 1); }
  unsigned num_data() const { return PopCount(datamap); }
  unsigned num_nodes() const { return PopCount(nodemap); }
  unsigned width() const { return count() != 0 ? count() : num_data() + num_nodes(); }
  static size_t Bytes(unsigned width) { return sizeof(Node) + width * sizeof(Versioned*); }
};
static_assert(sizeof(Node) == 16);

// Traits must provide:
//   static constexpr unsigned kBits;  // hash bits per level: nodes are 2^kBits wide (at most 32)
//   using Entry = ...;  using Key = ...;  (Entry derives from Versioned)
//   static Key KeyOf(const Entry*);
//   static uint64_t Hash(Key);
//   static bool Equal(Key, Key);  static bool Less(Key, Key);
//   static void RetireTree(Entry*, Reclaimer&);  // entry and all it owns leave the working tree
template <class Traits>
class Champ {
 public:
  using Entry = typename Traits::Entry;
  using Key = typename Traits::Key;
  static constexpr unsigned kBits = Traits::kBits;
  static constexpr unsigned kWidth = 1u << kBits;
  static_assert(kBits >= 1 && kBits <= 5, "a node's maps have 32 bits");
  static constexpr unsigned kMaxShift = 64;  // at or beyond: collision node

  // The entry with key `k` (hash `h`), or nullptr. O(depth), no allocation.
  static const Entry* Find(const Node* n, Key k, uint64_t h) {
    unsigned shift = 0;
    while (n != nullptr) {
      if (shift >= kMaxShift) {
        for (unsigned i = 0; i < n->count(); ++i) {
          const Entry* e = AsEntry(n->slots()[i]);
          if (Traits::Equal(Traits::KeyOf(e), k)) return e;
        }
        return nullptr;
      }
      uint32_t bit = Bit(h, shift);
      if (n->datamap & bit) {
        const Entry* e = AsEntry(n->slots()[Index(n->datamap, bit)]);
        return Traits::Equal(Traits::KeyOf(e), k) ? e : nullptr;
      }
      if (!(n->nodemap & bit)) return nullptr;
      n = AsNode(n->slots()[n->num_data() + Index(n->nodemap, bit)]);
      shift += kBits;
    }
    return nullptr;
  }

  // Makes the path to the entry with key `k` unshared and returns the slot
  // holding it, so the caller may replace the entry in place (keeping the
  // slot's reference balanced). REQUIRES: the key is present.
  static Entry** FindSlotMutable(Node*& root, Key k, uint64_t h, Reclaimer& w) {
    Node** slot = &root;
    unsigned shift = 0;
    for (;;) {
      Node* n = MakeUnique(*slot, w);
      if (shift >= kMaxShift) {
        for (unsigned i = 0; i < n->count(); ++i) {
          if (Traits::Equal(Traits::KeyOf(AsEntry(n->slots()[i])), k)) {
            return reinterpret_cast<Entry**>(&n->slots()[i]);
          }
        }
        assert(false && "FindSlotMutable: key not present");
        std::abort();
      }
      uint32_t bit = Bit(h, shift);
      if (n->datamap & bit) return reinterpret_cast<Entry**>(&n->slots()[Index(n->datamap, bit)]);
      assert(n->nodemap & bit);
      slot = reinterpret_cast<Node**>(&n->slots()[n->num_data() + Index(n->nodemap, bit)]);
      shift += kBits;
    }
  }

  // Inserts `e` (taking over one reference) or replaces the entry with the
  // same key. Returns the replaced entry with its reference passed to the
  // caller, or nullptr. Copies only shared nodes on the path. O(depth).
  static Entry* Put(Node*& root, Entry* e, uint64_t h, Reclaimer& w) {
    if (root == nullptr) {
      root = NewNode(1, w);
      root->datamap = Bit(h, 0);
      root->slots()[0] = e;
      return nullptr;
    }
    return PutAt(root, e, Traits::KeyOf(e), h, 0, w);
  }

  // Removes the entry with key `k`; returns it with its reference passed to
  // the caller, or nullptr when absent (then nothing is copied). O(depth).
  static Entry* Erase(Node*& root, Key k, uint64_t h, Reclaimer& w) {
    if (Find(root, k, h) == nullptr) return nullptr;
    Entry* removed = EraseAt(root, k, h, 0, w);
    if (root->width() == 0) {
      RetireNodeOnly(root, w);
      root = nullptr;
    }
    return removed;
  }

  // The whole subtree leaves the working tree: every node and entry is
  // accounted as leaving and retired. O(size).
  static void RetireTree(Node* n, Reclaimer& w) {
    if (n == nullptr) return;
    ForEachChild(n, [&](Versioned* c, bool is_node) {
      if (is_node) {
        RetireTree(AsNode(c), w);
      } else {
        Traits::RetireTree(AsEntry(c), w);
      }
    });
    RetireNodeOnly(n, w);
  }

  // Calls f(const Entry*) for every entry in canonical order until f returns
  // false. Returns false if stopped early.
  template <class F>
  static bool ForEach(const Node* n, F&& f) {
    if (n == nullptr) return true;
    if (n->count() != 0) {
      for (unsigned i = 0; i < n->count(); ++i)
        if (!f(static_cast<const Entry*>(AsEntry(n->slots()[i])))) return false;
      return true;
    }
    unsigned nd = n->num_data(), w = n->width();
    for (unsigned i = 0; i < nd; ++i)
      if (!f(static_cast<const Entry*>(AsEntry(n->slots()[i])))) return false;
    for (unsigned i = nd; i < w; ++i)
      if (!ForEach(AsNode(n->slots()[i]), f)) return false;
    return true;
  }

  // Calls f(before, after) for each key whose entry differs between the two
  // tries: (e, nullptr) removed, (nullptr, e) added, (a, b) with a != b
  // replaced. Sub-tries shared by pointer are skipped, so the cost is
  // O(changes x depth x 32). f returns false to stop; Diff then returns false.
  template <class F>
  static bool Diff(const Node* a, const Node* b, F&& f) {
    return DiffAt(a, b, 0, f);
  }

  // For two nodes at the same place in two tries, calls entry(x, y) for each
  // pair of differing entries and node(x, y) for each pair of differing
  // sub-nodes (either side nullptr where it has nothing; either node may be
  // nullptr), without comparing keys and in no particular order: the
  // children Diff would visit, for a caller that stages the visits (diff.cpp
  // prefetches them level by level). Reads only the two nodes.
  template <class OnEntry, class OnNode>
  static void ForEachDifferingChild(const Node* a, const Node* b, OnEntry&& entry, OnNode&& node) {
    if (a == b) return;
    if (a == nullptr || b == nullptr || a->count() != 0 || b->count() != 0) {
      auto one_side = [&](const Node* n, bool is_a) {  // everything under n differs
        const unsigned nd = n->count() != 0 ? n->count() : n->num_data();
        for (unsigned i = 0; i < nd; ++i) {
          const Versioned* e = n->slots()[i];
          entry(is_a ? e : nullptr, is_a ? nullptr : e);
        }
        if (n->count() != 0) return;
        for (unsigned i = nd; i < n->width(); ++i) {
          const Versioned* c = n->slots()[i];
          node(is_a ? c : nullptr, is_a ? nullptr : c);
        }
      };
      if (a != nullptr) one_side(a, true);
      if (b != nullptr) one_side(b, false);
      return;
    }
    if (a->datamap == b->datamap && a->nodemap == b->nodemap) {
      const unsigned nd = a->num_data(), width = a->width();
      for (unsigned i = 0; i < width; ++i) {
        const Versioned* x = a->slots()[i];
        const Versioned* y = b->slots()[i];
        if (x == y) continue;
        if (i < nd) {
          entry(x, y);
        } else {
          node(x, y);
        }
      }
      return;
    }
    const unsigned and_ = a->num_data(), bnd = b->num_data();
    uint32_t all = a->datamap | a->nodemap | b->datamap | b->nodemap;
    while (all != 0) {
      const uint32_t bit = all & (~all + 1);
      all &= all - 1;
      const Versioned* x = nullptr;
      const Versioned* y = nullptr;
      bool x_node = false, y_node = false;
      if (a->datamap & bit) x = a->slots()[Index(a->datamap, bit)];
      if (a->nodemap & bit) x = a->slots()[and_ + Index(a->nodemap, bit)], x_node = true;
      if (b->datamap & bit) y = b->slots()[Index(b->datamap, bit)];
      if (b->nodemap & bit) y = b->slots()[bnd + Index(b->nodemap, bit)], y_node = true;
      if (x == y) continue;
      if (x_node && y_node) {
        node(x, y);
        continue;
      }
      if (x_node) {
        node(x, nullptr);
      } else if (x != nullptr) {
        entry(x, nullptr);
      }
      if (y_node) {
        node(nullptr, y);
      } else if (y != nullptr) {
        entry(nullptr, y);
      }
    }
  }

  // Staged prefetching for many lookups at once. A lookup in a large trie is
  // a chain of dependent cache misses; moving every cursor of a batch down
  // one level per pass, prefetching what it reaches, overlaps the misses of
  // different lookups. Prefetching never changes results. Any thread that
  // may read the trie.
  using Cursor = TrieCursor;
  static void PrefetchNode(const Node* n) {
    const char* p = reinterpret_cast<const char*>(n);
    for (size_t off = 0; off < Node::Bytes(kWidth); off += 64) __builtin_prefetch(p + off);
  }
  static void PrefetchEntry(const Versioned* e) {
    const char* p = reinterpret_cast<const char*>(e);
    __builtin_prefetch(p);
    __builtin_prefetch(p + 64);  // a record's key, after its 24-byte header, may cross a line
  }
  // Moves `c` one level down; false when it has reached an entry or a miss.
  static bool Step(Cursor& c) {
    const Node* n = c.node;
    if (n == nullptr || c.shift >= kMaxShift) return false;
    uint32_t bit = Bit(c.hash, c.shift);
    if (n->datamap & bit) {
      PrefetchEntry(n->slots()[Index(n->datamap, bit)]);
      c.node = nullptr;
      return false;
    }
    if (!(n->nodemap & bit)) {
      c.node = nullptr;
      return false;
    }
    c.node = AsNode(n->slots()[n->num_data() + Index(n->nodemap, bit)]);
    c.shift += kBits;
    PrefetchNode(c.node);
    return true;
  }

  // Number of nodes in the trie (for tests and accounting checks). O(size).
  static size_t CountNodes(const Node* n) {
    if (n == nullptr) return 0;
    size_t total = 1;
    if (n->count() == 0)
      for (unsigned i = n->num_data(); i < n->width(); ++i) total += CountNodes(AsNode(n->slots()[i]));
    return total;
  }

 private:
  static uint32_t Bit(uint64_t h, unsigned shift) { return uint32_t{1} << ((h >> shift) & (kWidth - 1)); }
  static unsigned Index(uint32_t map, uint32_t bit) { return PopCount(map & (bit - 1)); }
  static Entry* AsEntry(Versioned* c) { return static_cast<Entry*>(c); }
  static const Entry* AsEntry(const Versioned* c) { return static_cast<const Entry*>(c); }
  static Node* AsNode(Versioned* c) { return static_cast<Node*>(c); }
  static const Node* AsNode(const Versioned* c) { return static_cast<const Node*>(c); }

  template <class F>
  static void ForEachChild(const Node* n, F&& f) {
    if (n->count() != 0) {
      for (unsigned i = 0; i < n->count(); ++i) f(n->slots()[i], false);
      return;
    }
    unsigned nd = n->num_data(), w = n->width();
    for (unsigned i = 0; i < w; ++i) f(n->slots()[i], i >= nd);
  }

  static Node* NewNode(unsigned width, Reclaimer& w) {
    void* mem = w.pool.Alloc(Node::Bytes(width));
    Heap::Enter(w.heap.nodes, Node::Bytes(width));
    Node* n = new (mem) Node();
    n->set_birth(w.building());
    return n;
  }

  // A node leaves the working tree; its children do not (they moved, or the
  // replacement shares them).
  static void RetireNodeOnly(Node* n, Reclaimer& w) {
    size_t bytes = Node::Bytes(n->width());
    Heap::Leave(w.heap.nodes, bytes);
    w.Retire(n, ObjKind::kNode);
  }

  // Replaces a published node in `slot` by a copy born in this batch.
  static Node* MakeUnique(Node*& slot, Reclaimer& w) {
    Node* n = slot;
    if (n->birth() == w.building()) return n;
    unsigned width = n->width();
    Node* c = NewNode(width, w);
    c->datamap = n->datamap;  // and with them a collision node's count
    c->nodemap = n->nodemap;
    std::memcpy(c->slots(), n->slots(), width * sizeof(Versioned*));
    RetireNodeOnly(n, w);
    slot = c;
    return c;
  }

  // Replaces the node in `slot` by one of `new_width` slots filled by
  // fill(dst) (which copies what it keeps from the old node). The old node
  // is retired: freed now if born in this batch, else when history lets go.
  template <class Fill>
  static Node* Reshape(Node*& slot, unsigned new_width, uint32_t datamap, uint32_t nodemap, uint32_t count,
                       Fill&& fill, Reclaimer& w) {
    Node* old = slot;
    Node* n = NewNode(new_width, w);
    if (count != 0) {
      n->set_count(count);
    } else {
      n->datamap = datamap;
      n->nodemap = nodemap;
    }
    fill(n->slots());
    RetireNodeOnly(old, w);
    slot = n;
    return n;
  }

  static Entry* PutAt(Node*& slot, Entry* e, Key k, uint64_t h, unsigned shift, Reclaimer& w) {
    if (shift >= kMaxShift) return PutCollision(slot, e, k, w);
    uint32_t bit = Bit(h, shift);
    Node* n = slot;
    if (n->datamap & bit) {
      unsigned i = Index(n->datamap, bit);
      Entry* cur = AsEntry(n->slots()[i]);
      if (Traits::Equal(Traits::KeyOf(cur), k)) {
        n = MakeUnique(slot, w);
        n->slots()[i] = e;
        return cur;
      }
      n = MakeUnique(slot, w);
      Node* sub = MergeTwo(cur, Traits::Hash(Traits::KeyOf(cur)), e, h, shift + kBits, w);
      DataToNode(n, bit, sub);
      return nullptr;
    }
    if (n->nodemap & bit) {
      n = MakeUnique(slot, w);
      Node*& child = reinterpret_cast<Node*&>(n->slots()[n->num_data() + Index(n->nodemap, bit)]);
      return PutAt(child, e, k, h, shift + kBits, w);
    }
    // New data slot: the node grows by one.
    unsigned i = Index(n->datamap, bit), width = n->width();
    Reshape(slot, width + 1, n->datamap | bit, n->nodemap, 0,
            [&](Versioned** dst) {
              Versioned* const* src = n->slots();
              std::memcpy(dst, src, i * sizeof(Versioned*));
              dst[i] = e;
              std::memcpy(dst + i + 1, src + i, (width - i) * sizeof(Versioned*));
            },
            w);
    return nullptr;
  }

  static Entry* PutCollision(Node*& slot, Entry* e, Key k, Reclaimer& w) {
    Node* n = slot;
    unsigned pos = 0;
    for (; pos < n->count(); ++pos) {
      Key cur = Traits::KeyOf(AsEntry(n->slots()[pos]));
      if (Traits::Equal(cur, k)) {
        n = MakeUnique(slot, w);
        Entry* old = AsEntry(n->slots()[pos]);
        n->slots()[pos] = e;
        return old;
      }
      if (Traits::Less(k, cur)) break;
    }
    unsigned c = n->count();
    Reshape(slot, c + 1, 0, 0, c + 1,
            [&](Versioned** dst) {
              Versioned* const* src = n->slots();
              std::memcpy(dst, src, pos * sizeof(Versioned*));
              dst[pos] = e;
              std::memcpy(dst + pos + 1, src + pos, (c - pos) * sizeof(Versioned*));
            },
            w);
    return nullptr;
  }

  // A fresh node holding two entries whose hashes agree below `shift`.
  static Node* MergeTwo(Entry* a, uint64_t ha, Entry* b, uint64_t hb, unsigned shift, Reclaimer& w) {
    if (shift >= kMaxShift) {
      Node* n = NewNode(2, w);
      n->set_count(2);
      bool a_first = Traits::Less(Traits::KeyOf(a), Traits::KeyOf(b));
      n->slots()[0] = a_first ? a : b;
      n->slots()[1] = a_first ? b : a;
      return n;
    }
    uint32_t ba = Bit(ha, shift), bb = Bit(hb, shift);
    if (ba != bb) {
      Node* n = NewNode(2, w);
      n->datamap = ba | bb;
      n->slots()[0] = ba < bb ? a : b;
      n->slots()[1] = ba < bb ? b : a;
      return n;
    }
    Node* n = NewNode(1, w);
    n->nodemap = ba;
    n->slots()[0] = MergeTwo(a, ha, b, hb, shift + kBits, w);
    return n;
  }

  // In place: the data entry at `bit` moves into `sub` (which already holds
  // it), and `sub` takes the bit's place among the sub-nodes. Width is kept.
  // REQUIRES: n unshared.
  static void DataToNode(Node* n, uint32_t bit, Node* sub) {
    Versioned* tmp[32];
    unsigned nd = n->num_data(), w = n->width();
    unsigned di = Index(n->datamap, bit);
    unsigned out = 0;
    for (unsigned i = 0; i < nd; ++i)
      if (i != di) tmp[out++] = n->slots()[i];
    uint32_t nodemap = n->nodemap | bit;
    unsigned ni = Index(nodemap, bit);
    for (unsigned j = 0, src = nd; j < PopCount(nodemap); ++j) {
      tmp[out++] = (j == ni) ? static_cast<Versioned*>(sub) : n->slots()[src++];
    }
    assert(out == w);
    n->datamap &= ~bit;
    n->nodemap = nodemap;
    std::memcpy(n->slots(), tmp, w * sizeof(Versioned*));
  }

  // In place: the sub-node at `bit` is replaced by the data entry `e`.
  // REQUIRES: n unshared.
  static void NodeToData(Node* n, uint32_t bit, Versioned* e) {
    Versioned* tmp[32];
    unsigned nd = n->num_data(), w = n->width();
    unsigned ni = Index(n->nodemap, bit);
    uint32_t datamap = n->datamap | bit;
    unsigned di = Index(datamap, bit);
    unsigned out = 0;
    for (unsigned i = 0, src = 0; i < nd + 1; ++i) tmp[out++] = (i == di) ? e : n->slots()[src++];
    for (unsigned j = 0; j < n->num_nodes(); ++j)
      if (j != ni) tmp[out++] = n->slots()[nd + j];
    assert(out == w);
    n->datamap = datamap;
    n->nodemap &= ~bit;
    std::memcpy(n->slots(), tmp, w * sizeof(Versioned*));
  }

  // REQUIRES: the key is present below `slot`.
  static Entry* EraseAt(Node*& slot, Key k, uint64_t h, unsigned shift, Reclaimer& w) {
    Node* n = slot;
    if (shift >= kMaxShift) {
      unsigned pos = 0;
      while (!Traits::Equal(Traits::KeyOf(AsEntry(n->slots()[pos])), k)) ++pos;
      Entry* removed = AsEntry(n->slots()[pos]);
      unsigned c = n->count();
      Reshape(slot, c - 1, 0, 0, c - 1,
              [&](Versioned** dst) {
                Versioned* const* src = n->slots();
                std::memcpy(dst, src, pos * sizeof(Versioned*));
                std::memcpy(dst + pos, src + pos + 1, (c - 1 - pos) * sizeof(Versioned*));
              },
              w);
      return removed;
    }
    uint32_t bit = Bit(h, shift);
    if (n->datamap & bit) {
      unsigned i = Index(n->datamap, bit), width = n->width();
      Entry* removed = AsEntry(n->slots()[i]);
      Reshape(slot, width - 1, n->datamap & ~bit, n->nodemap, 0,
              [&](Versioned** dst) {
                Versioned* const* src = n->slots();
                std::memcpy(dst, src, i * sizeof(Versioned*));
                std::memcpy(dst + i, src + i + 1, (width - 1 - i) * sizeof(Versioned*));
              },
              w);
      return removed;
    }
    assert(n->nodemap & bit);
    n = MakeUnique(slot, w);
    Node*& child = reinterpret_cast<Node*&>(n->slots()[n->num_data() + Index(n->nodemap, bit)]);
    Entry* removed = EraseAt(child, k, h, shift + kBits, w);
    Node* c = child;
    // Canonical form: a sub-node left holding a single entry is inlined.
    bool single = c->count() != 0 ? c->count() == 1 : (c->nodemap == 0 && c->num_data() == 1);
    if (single) {
      Versioned* only = c->slots()[0];
      RetireNodeOnly(c, w);  // born in this batch by the recursive erase: freed now
      NodeToData(n, bit, only);
    }
    return removed;
  }

  template <class F>
  static bool AllAs(const Node* n, bool removed, F& f) {
    return ForEach(n, [&](const Entry* e) { return removed ? f(e, nullptr) : f(nullptr, e); });
  }

  template <class F>
  static bool EntryVsNode(const Entry* e, const Node* n, bool entry_is_before, F& f) {
    bool found = false;
    bool go = ForEach(n, [&](const Entry* x) {
      if (!found && Traits::Equal(Traits::KeyOf(x), Traits::KeyOf(e))) {
        found = true;
        if (x == e) return true;
        return entry_is_before ? f(e, x) : f(x, e);
      }
      return entry_is_before ? f(nullptr, x) : f(x, nullptr);
    });
    if (!go) return false;
    if (!found) return entry_is_before ? f(e, nullptr) : f(nullptr, e);
    return true;
  }

  template <class F>
  static bool DiffAt(const Node* a, const Node* b, unsigned shift, F& f) {
    if (a == b) return true;
    if (a == nullptr) return AllAs(b, false, f);
    if (b == nullptr) return AllAs(a, true, f);
    if (shift >= kMaxShift) {  // both collision nodes, sorted by key
      unsigned i = 0, j = 0;
      while (i < a->count() || j < b->count()) {
        const Entry* x = i < a->count() ? AsEntry(a->slots()[i]) : nullptr;
        const Entry* y = j < b->count() ? AsEntry(b->slots()[j]) : nullptr;
        bool go;
        if (y == nullptr || (x != nullptr && Traits::Less(Traits::KeyOf(x), Traits::KeyOf(y)))) {
          go = f(x, nullptr), ++i;
        } else if (x == nullptr || Traits::Less(Traits::KeyOf(y), Traits::KeyOf(x))) {
          go = f(nullptr, y), ++j;
        } else {
          go = x == y ? true : f(x, y);
          ++i, ++j;
        }
        if (!go) return false;
      }
      return true;
    }
    if (a->datamap == b->datamap && a->nodemap == b->nodemap) {
      // Same shape (the common case of modifications): slot i of a and b
      // hold the same bit, so compare them pairwise.
      unsigned nd = a->num_data(), width = a->width();
      for (unsigned i = 0; i < width; ++i) {
        const Versioned* ca = a->slots()[i];
        const Versioned* cb = b->slots()[i];
        if (ca == cb) continue;
        bool go;
        if (i >= nd) {
          go = DiffAt(AsNode(ca), AsNode(cb), shift + kBits, f);
        } else if (Traits::Equal(Traits::KeyOf(AsEntry(ca)), Traits::KeyOf(AsEntry(cb)))) {
          go = f(AsEntry(ca), AsEntry(cb));
        } else {
          go = f(AsEntry(ca), nullptr) && f(nullptr, AsEntry(cb));
        }
        if (!go) return false;
      }
      return true;
    }
    uint32_t all = a->datamap | a->nodemap | b->datamap | b->nodemap;
    unsigned and_ = a->num_data(), bnd = b->num_data();
    while (all != 0) {
      uint32_t bit = all & (~all + 1);
      all &= all - 1;
      const Versioned* ca = nullptr;
      const Versioned* cb = nullptr;
      bool a_node = false, b_node = false;
      if (a->datamap & bit) ca = a->slots()[Index(a->datamap, bit)];
      if (a->nodemap & bit) ca = a->slots()[and_ + Index(a->nodemap, bit)], a_node = true;
      if (b->datamap & bit) cb = b->slots()[Index(b->datamap, bit)];
      if (b->nodemap & bit) cb = b->slots()[bnd + Index(b->nodemap, bit)], b_node = true;
      if (ca == cb) continue;
      bool go = true;
      if (ca == nullptr) {
        go = b_node ? AllAs(AsNode(cb), false, f) : f(nullptr, AsEntry(cb));
      } else if (cb == nullptr) {
        go = a_node ? AllAs(AsNode(ca), true, f) : f(AsEntry(ca), nullptr);
      } else if (a_node && b_node) {
        go = DiffAt(AsNode(ca), AsNode(cb), shift + kBits, f);
      } else if (!a_node && !b_node) {
        const Entry* x = AsEntry(ca);
        const Entry* y = AsEntry(cb);
        if (Traits::Equal(Traits::KeyOf(x), Traits::KeyOf(y))) {
          go = f(x, y);
        } else {
          go = f(x, nullptr) && f(nullptr, y);
        }
      } else if (!a_node) {
        go = EntryVsNode(AsEntry(ca), AsNode(cb), true, f);
      } else {
        go = EntryVsNode(AsEntry(cb), AsNode(ca), false, f);
      }
      if (!go) return false;
    }
    return true;
  }
};

}  // namespace kubefold::state::internal
