// Who is asking and whether they may, as a kube-apiserver with
// `--authorization-mode=Node,RBAC` decides it: the user a request
// authenticated as, the request attributes the server derives from the
// method, path and query (apiserver's RequestInfoFactory), and RBAC over the
// rbac.authorization.k8s.io/v1 objects of the cluster's store, after the
// `system:masters` short-circuit every real server has.
//
// Thread-safety: pure functions; Authorize reads the store, which is
// thread-safe itself.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/emulator/store.h"

namespace kubefold::emulator {

inline constexpr char kMastersGroup[] = "system:masters";
inline constexpr char kAuthenticatedGroup[] = "system:authenticated";
inline constexpr char kUnauthenticatedGroup[] = "system:unauthenticated";
inline constexpr char kAnonymousUser[] = "system:anonymous";

// An authenticated (or anonymous) user: user.Info.
struct UserInfo {
  std::string name;
  std::string uid;
  std::vector<std::string> groups;

  bool InGroup(std::string_view group) const;
};

// authorizer.Attributes of one request (or of a SubjectAccessReview).
struct Attributes {
  UserInfo user;
  std::string verb;
  bool resource_request = false;
  std::string path;  // non-resource requests: the URL path
  std::string ns;
  std::string group;
  std::string version;
  std::string resource;
  std::string subresource;
  std::string name;
};

// RequestInfoFactory.NewRequestInfo: resource or non-resource request, the
// verb from the method (GET on a collection is list, or watch with a true
// `watch` parameter or a /watch/ prefix; DELETE of a collection is
// deletecollection), namespace, group, resource, subresource and name (a
// list's `fieldSelector=metadata.name=X` names X). `path` is the decoded
// URL path. Allocates; O(path length + query size).
Attributes ResolveRequest(std::string_view method, const std::string& path,
                          const std::vector<std::pair<std::string, std::string>>& query);

struct Decision {
  bool allowed = false;
  // Why: "RBAC: allowed by ClusterRoleBinding ..." when allowed through
  // RBAC; on a denial, the RBAC errors met on the way ("RBAC: role... not
  // found"), usually "".
  std::string reason;
};

// The union authorizer of a kubeadm cluster: members of system:masters may
// do anything; everyone else what their RoleBindings and
// ClusterRoleBindings grant (rbac/v1 RuleAllows semantics). Reads the
// current roles and bindings from `store`; O(roles + bindings).
Decision Authorize(const ObjectStore& store, const Attributes& attributes);

// forbiddenMessage of the apiserver's responsewriters: `User "alice" cannot
// get resource "services/proxy" in API group "" in the namespace "ns"`, or
// `... at the cluster scope`, or `User "alice" cannot get path "/metrics"`.
std::string ForbiddenMessage(const Attributes& attributes);

// The bootstrap policy objects this emulator starts every cluster with (a
// subset of a real cluster's: cluster-admin, system:discovery,
// system:basic-user, system:public-info-viewer and their bindings), as
// ClusterRoles then ClusterRoleBindings, each without the server-set
// metadata.
std::vector<Json> BootstrapPolicy();

}  // namespace kubefold::emulator
