// Compressed storage of workload objects: zstd with a dictionary per
// (cluster, group, kind).
//
// Objects of one kind in one cluster share most of their text: field names,
// the pod template's defaults, condition reasons. A record compressed on its
// own keeps about half of its bytes; compressed against another object of
// the same kind and cluster, about an eighth (docs/state.md, "Compressed
// objects"). So the first object a watcher hands over for a (cluster, group,
// kind) becomes that key's dictionary (zstd "raw content"), and every
// record of that key is compressed against it.
//
// Dictionaries are immutable and live as long as the process: a record
// names its own by number (id), so records, snapshots and the journal never
// have to track their lifetime, and the same key always gives the same
// dictionary, so equal objects always compress to equal bytes
// (Record::SameContent).
// Their number is bounded (kMaxDictionaries); past it objects are stored
// uncompressed.
//
// Thread-safety: For, Compress and Decompress may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

struct ZSTD_CDict_s;
struct ZSTD_DDict_s;

namespace kubefold::state {

class ObjectDictionary {
 public:
  static constexpr size_t kMaxDictionaries = 4096;
  // Dictionaries are cut to this many bytes of their sample.
  static constexpr size_t kMaxDictionaryBytes = 16 * 1024;

  // The dictionary registered under `key`, made from `sample` when there is
  // none yet. nullptr when `sample` is empty or kMaxDictionaries are taken.
  static const ObjectDictionary* For(std::string_view key, std::string_view sample);
  // The dictionary of `kind` objects of `cluster` (For with a key made of
  // the three).
  static const ObjectDictionary* ForKind(std::string_view cluster, std::string_view group, std::string_view kind,
                                         std::string_view sample);
  // How many dictionaries exist, and the bytes they hold (their text and
  // zstd's tables), for accounting.
  static size_t Count();
  static size_t TotalBytes();

  // A dictionary's number, 0 for the first one made in this process and
  // below kMaxDictionaries: a record names its dictionary by it, in a byte or
  // two instead of an 8-byte address.
  uint32_t id() const { return id_; }
  // The dictionary numbered `id`, or nullptr when there is none (yet).
  static const ObjectDictionary* ById(uint32_t id);

  // Replaces `frame` with one zstd frame holding `json`, compressed against
  // this dictionary. `frame`'s capacity is reused: a writer passes the same
  // string for every object.
  void Compress(std::string_view json, std::string& frame) const;
  // Appends what `frame` (from Compress on this dictionary) holds to `out`.
  // Returns false, leaving `out` as it was, when `frame` is not such a frame.
  bool Decompress(std::string_view frame, std::string& out) const;

  ObjectDictionary(const ObjectDictionary&) = delete;
  ObjectDictionary& operator=(const ObjectDictionary&) = delete;

 private:
  ObjectDictionary(std::string_view sample, uint32_t id);
  ~ObjectDictionary() = default;  // never destroyed: see above
  std::string text_;
  ZSTD_CDict_s* cdict_ = nullptr;  // both refer to text_
  ZSTD_DDict_s* ddict_ = nullptr;
  uint32_t id_;
};

}  // namespace kubefold::state
