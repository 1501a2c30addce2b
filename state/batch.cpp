#include "state/batch.h"

namespace kubefold::state {

namespace {
void FreeOp(auto& op) {
  if (op.record) Record::Destroy(op.record);
  op.record = nullptr;
  if (op.replace) {
    for (auto& item : op.replace->items) {
      if (item.record) Record::Destroy(item.record);
      item.record = nullptr;
    }
  }
}
}  // namespace

Batch& Batch::operator=(Batch&& other) noexcept {
  if (this != &other) {
    Clear();
    ops_ = std::move(other.ops_);
    decided_from_ = std::move(other.decided_from_);
  }
  return *this;
}

Batch::~Batch() { Clear(); }

void Batch::Clear() {
  for (auto& op : ops_) FreeOp(op);
  ops_.clear();
}

Status Batch::Upsert(std::string_view cluster, std::string_view ns, const WorkloadObject& object,
                     TimePoint received) {
  if (Status s = ValidateClusterName(cluster); !s.ok()) return s;
  if (Status s = ValidateWorkload(ns, object); !s.ok()) return s;
  Op op{};
  op.type = OpType::kUpsert;
  op.cluster = cluster;
  op.ns = ns;
  op.ns_hash = HashName(ns);
  op.key_hash = HashKey(object.key);
  op.record = Record::Create(object);
  op.received = received;
  ops_.push_back(std::move(op));
  return Status::Ok();
}

Status Batch::Delete(std::string_view cluster, std::string_view ns, WorkloadKeyView key, TimePoint received) {
  if (Status s = ValidateClusterName(cluster); !s.ok()) return s;
  if (Status s = ValidateKey(ns, key); !s.ok()) return s;
  Op op{};
  op.type = OpType::kDelete;
  op.cluster = cluster;
  op.ns = ns;
  op.ns_hash = HashName(ns);
  op.key_hash = HashKey(key);
  WorkloadObject key_only;
  key_only.key = WorkloadKey{std::string(key.group), std::string(key.kind), std::string(key.name)};
  op.record = Record::Create(key_only);
  op.received = received;
  ops_.push_back(std::move(op));
  return Status::Ok();
}

Status Batch::ReplaceKind(std::string_view cluster, std::string_view group, std::string_view kind,
                          const std::vector<NamespacedObject>& objects, TimePoint received) {
  if (Status s = ValidateClusterName(cluster); !s.ok()) return s;
  if (Status s = ValidateKey("", WorkloadKeyView(group, kind, "x")); !s.ok()) return s;
  for (size_t i = 0; i < objects.size(); ++i) {
    const auto& o = objects[i];
    if (o.object.key.group != group || o.object.key.kind != kind) {
      return InvalidArgument("replace of " + std::string(group) + "/" + std::string(kind) + ": object " +
                             std::to_string(i) + " (" + o.ns + "/" + o.object.key.name + ") is a " +
                             o.object.key.group + "/" + o.object.key.kind);
    }
    if (Status s = ValidateWorkload(o.ns, o.object); !s.ok()) {
      return InvalidArgument("replace of " + std::string(group) + "/" + std::string(kind) + ": object " +
                             std::to_string(i) + ": " + s.message());
    }
  }
  Op op{};
  op.type = OpType::kReplaceKind;
  op.cluster = cluster;
  op.replace = std::make_unique<Replace>();
  op.replace->group = group;
  op.replace->kind = kind;
  op.received = received;
  op.replace->items.reserve(objects.size());
  for (const auto& o : objects) {
    op.replace->items.push_back(Item{o.ns, HashName(o.ns), HashKey(o.object.key), Record::Create(o.object)});
  }
  ops_.push_back(std::move(op));
  return Status::Ok();
}

Status Batch::AddCluster(std::string_view cluster, TimePoint received) {
  if (Status s = ValidateClusterName(cluster); !s.ok()) return s;
  Op op{};
  op.type = OpType::kAddCluster;
  op.cluster = cluster;
  op.received = received;
  ops_.push_back(std::move(op));
  return Status::Ok();
}

Status Batch::RemoveCluster(std::string_view cluster, TimePoint received) {
  if (Status s = ValidateClusterName(cluster); !s.ok()) return s;
  Op op{};
  op.type = OpType::kRemoveCluster;
  op.cluster = cluster;
  op.received = received;
  ops_.push_back(std::move(op));
  return Status::Ok();
}

}  // namespace kubefold::state
