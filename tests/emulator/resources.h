// The resource types one emulated cluster serves: the built-in ones and those
// its CustomResourceDefinitions add, with the discovery documents kubectl
// reads (legacy discovery, spec §6) and the structural-schema pruning of
// custom resources.
//
// Thread-safety: a Registry is an immutable value; the cluster swaps a new one
// in when a CRD changes (see api.h).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kubefold::emulator {

using Json = nlohmann::ordered_json;

struct ResourceType {
  std::string group;     // "" for the core group
  std::string version;   // "v1"
  std::string resource;  // plural, lower case: "deployments"
  std::string singular;  // "deployment"
  std::string kind;      // "Deployment"
  bool namespaced = true;
  bool status_subresource = false;
  std::vector<std::string> short_names;
  std::vector<std::string> categories;
  // The verbs discovery lists; empty: all eight of a stored resource.
  // Create-only resources (TokenReview, SubjectAccessReview, ...) list
  // {"create"}: nothing of them is stored.
  std::vector<std::string> verbs;
  bool custom = false;   // served from a CRD
  Json schema;           // custom: the version's openAPIV3Schema (null: none)
  Json printer_columns;  // custom: the version's additionalPrinterColumns (null: none)

  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  // "deployments.apps", "pods": how a real server names it in messages.
  std::string GroupResource() const { return group.empty() ? resource : resource + "." + group; }
  // "Deployment.apps", "Pod": the qualified kind in Invalid messages.
  std::string GroupKind() const { return group.empty() ? kind : kind + "." + group; }
  // The store key: one per group and resource, whatever the version.
  std::string StoreKey() const { return group + "/" + resource; }
  // True for the create-only review resources, which store nothing.
  bool CreateOnly() const { return verbs.size() == 1 && verbs[0] == "create"; }
};

class Registry {
 public:
  // The built-in types of spec §8 / the issue: namespaces, pods, nodes,
  // secrets, configmaps, events, services, endpoints, deployments,
  // statefulsets, daemonsets, tokenreviews, selfsubjectreviews,
  // selfsubjectaccessreviews, subjectaccessreviews, the four RBAC kinds,
  // leases, customresourcedefinitions.
  static std::shared_ptr<const Registry> BuiltIn();

  // A registry with the CRD's served versions added (or replaced). Returns
  // an error message naming the field when the CRD is not servable.
  std::shared_ptr<const Registry> WithCrd(const Json& crd, std::string* error) const;
  // A registry without the CRD's resources.
  std::shared_ptr<const Registry> WithoutCrd(const std::string& group, const std::string& plural) const;

  const ResourceType* Find(const std::string& group, const std::string& version, const std::string& resource) const;
  const std::vector<ResourceType>& types() const { return types_; }

  // Discovery documents (legacy, application/json).
  Json ApiVersions() const;                        // GET /api
  Json ApiGroupList() const;                       // GET /apis
  std::optional<Json> ApiGroup(const std::string& group) const;  // GET /apis/G
  std::optional<Json> ResourceList(const std::string& group, const std::string& version) const;

 private:
  std::vector<ResourceType> types_;
};

// Validates a CRD object as the apiextensions API server would before
// accepting it (names, group, versions, exactly one storage version, a
// structural schema per version). Returns "" or the field and reason.
std::string ValidateCrd(const Json& crd);

// Structural-schema pruning of a custom resource: removes fields the schema
// does not declare (unless x-kubernetes-preserve-unknown-fields), and appends
// to `unknown` the path of every field removed (".spec.foo"), so strict field
// validation can refuse them. apiVersion, kind and metadata at the root are
// kept.
void PruneBySchema(Json& object, const Json& schema, std::vector<std::string>* unknown);

// Structural-schema defaulting, as the apiextensions server does on every
// write: a property missing from an object that is present gets its
// `default` (objects that are absent are not created unless they have a
// default themselves).
void DefaultBySchema(Json& object, const Json& schema);

// Type checks against the schema (type, required, enum, minimum/maximum),
// one "path: reason" per violation, as 422 causes.
std::vector<std::pair<std::string, std::string>> ValidateBySchema(const Json& object, const Json& schema);

}  // namespace kubefold::emulator
