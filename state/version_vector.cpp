#include "state/version_vector.h"

#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

namespace kubefold::state {

namespace {
constexpr size_t kMaxNameBytes = 253;
}

Status ValidateClusterName(std::string_view name) {
  if (name.empty()) return InvalidArgument("cluster name is empty");
  if (name.size() > kMaxNameBytes) {
    return InvalidArgument("cluster name is " + std::to_string(name.size()) +
                           " bytes long; at most 253 are allowed");
  }
  return Status::Ok();
}

VersionVector::VersionVector(std::initializer_list<std::pair<std::string, uint64_t>> init) {
  std::map<std::string, uint64_t> sorted(init.begin(), init.end());
  auto names = std::make_shared<Names>();
  for (auto& [n, c] : sorted) {
    names->push_back(n);
    counters_.push_back(c);
  }
  if (!names->empty()) names_ = std::move(names);
}

VersionVector::VersionVector(std::shared_ptr<const Names> names, std::vector<uint64_t> counters)
    : names_(std::move(names)), counters_(std::move(counters)) {
  assert((names_ ? names_->size() : 0) == counters_.size());
}

uint64_t VersionVector::Get(std::string_view cluster) const {
  if (!names_) return 0;
  auto it = std::lower_bound(names_->begin(), names_->end(), cluster);
  if (it == names_->end() || *it != cluster) return 0;
  return counters_[static_cast<size_t>(it - names_->begin())];
}

void VersionVector::Set(std::string_view cluster, uint64_t counter) {
  if (names_) {
    auto it = std::lower_bound(names_->begin(), names_->end(), cluster);
    size_t pos = static_cast<size_t>(it - names_->begin());
    if (it != names_->end() && *it == cluster) {
      counters_[pos] = counter;
      return;
    }
    auto names = std::make_shared<Names>(*names_);
    names->insert(names->begin() + static_cast<std::ptrdiff_t>(pos), std::string(cluster));
    counters_.insert(counters_.begin() + static_cast<std::ptrdiff_t>(pos), counter);
    names_ = std::move(names);
    return;
  }
  names_ = std::make_shared<Names>(Names{std::string(cluster)});
  counters_ = {counter};
}

// Walks the union of both name lists in order, calling f(a_counter, b_counter).
template <class F>
static void Zip(const VersionVector& a, const VersionVector& b, F&& f) {
  if (a.shared_names() == b.shared_names()) {
    for (size_t i = 0; i < a.size(); ++i) f(a.counter(i), b.counter(i));
    return;
  }
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a.name(i) < b.name(j))) {
      f(a.counter(i++), uint64_t{0});
    } else if (i == a.size() || b.name(j) < a.name(i)) {
      f(uint64_t{0}, b.counter(j++));
    } else {
      f(a.counter(i++), b.counter(j++));
    }
  }
}

Ordering VersionVector::Compare(const VersionVector& other) const {
  bool less = false, greater = false;
  Zip(*this, other, [&](uint64_t x, uint64_t y) {
    if (x < y) less = true;
    if (x > y) greater = true;
  });
  if (less && greater) return Ordering::kConcurrent;
  if (less) return Ordering::kLess;
  if (greater) return Ordering::kGreater;
  return Ordering::kEqual;
}

void VersionVector::Merge(const VersionVector& other) {
  if (names_ == other.names_) {
    for (size_t i = 0; i < counters_.size(); ++i) counters_[i] = std::max(counters_[i], other.counters_[i]);
    return;
  }
  // Result names = union; reuse either side's list when it already covers the union.
  auto names = std::make_shared<Names>();
  std::vector<uint64_t> counters;
  size_t i = 0, j = 0;
  while (i < size() || j < other.size()) {
    if (j == other.size() || (i < size() && name(i) < other.name(j))) {
      names->emplace_back(name(i));
      counters.push_back(counter(i++));
    } else if (i == size() || other.name(j) < name(i)) {
      names->emplace_back(other.name(j));
      counters.push_back(other.counter(j++));
    } else {
      names->emplace_back(name(i));
      counters.push_back(std::max(counter(i++), other.counter(j++)));
    }
  }
  if (names_ && names->size() == names_->size()) {
    counters_ = std::move(counters);  // our list already covered the union
  } else if (other.names_ && names->size() == other.names_->size()) {
    names_ = other.names_;
    counters_ = std::move(counters);
  } else {
    names_ = names->empty() ? nullptr : std::shared_ptr<const Names>(std::move(names));
    counters_ = std::move(counters);
  }
}

std::string VersionVector::ToJson() const {
  nlohmann::json obj = nlohmann::json::object();
  for (size_t i = 0; i < size(); ++i) {
    if (counters_[i] != 0) obj[std::string(name(i))] = counters_[i];
  }
  return obj.dump();  // nlohmann's object_t is a std::map: keys come out sorted
}

Result<VersionVector> VersionVector::Parse(std::string_view text) {
  // Duplicate keys are an error (nlohmann would silently keep the last one).
  std::string duplicate;
  std::set<std::string> seen;
  nlohmann::json::parser_callback_t cb = [&](int depth, nlohmann::json::parse_event_t event,
                                             nlohmann::json& parsed) {
    if (event == nlohmann::json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!seen.insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text.begin(), text.end(), cb);
  } catch (const nlohmann::json::exception& e) {
    // parse_error for syntax; out_of_range for numbers like 2e333333.
    return InvalidArgument(std::string("version vector is not valid JSON: ") + e.what());
  }
  if (!doc.is_object()) {
    return InvalidArgument(std::string("version vector must be a JSON object like {\"eu-1\":12}, got ") +
                           doc.type_name());
  }
  if (!duplicate.empty()) {
    return InvalidArgument("version vector names cluster \"" + duplicate + "\" twice");
  }
  VersionVector out;
  auto names = std::make_shared<Names>();
  for (auto it = doc.begin(); it != doc.end(); ++it) {  // sorted by key
    if (Status s = ValidateClusterName(it.key()); !s.ok()) {
      return InvalidArgument("version vector key: " + s.message());
    }
    const auto& v = it.value();
    if (!v.is_number_unsigned()) {
      std::string what = v.is_number_integer() ? "a negative number"
                         : v.is_number_float() ? "not an integer"
                                               : std::string("a ") + v.type_name();
      return InvalidArgument("version vector component \"" + it.key() +
                             "\" must be an unsigned 64-bit integer, got " + what);
    }
    names->push_back(it.key());
    out.counters_.push_back(v.get<uint64_t>());
  }
  if (!names->empty()) out.names_ = std::move(names);
  return out;
}

}  // namespace kubefold::state
