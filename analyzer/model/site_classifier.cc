// analyzer/model/site_classifier.cc: see site_classifier.h.
#include "analyzer/model/site_classifier.h"

#include <algorithm>


#include "analyzer/symbols/symbolizer.h"
#include "format/trace_format.h"

namespace heapsight::analyzer {

SiteKind SiteClassifier::ClassifyWalking(uint64_t stack, const StackTrie& nodes,
                                         Symbolizer& symbolizer, bool* provisional) {
  std::vector<uint64_t> ips;
  uint64_t node = stack;
  while (node != 0 && ips.size() < kMaxDepth) {
    StackNode n;
    if (!nodes.Find(node, &n)) {
      *provisional = true;
      break;
    }
    ips.push_back(n.ip);
    if (n.parent == node) break;
    node = n.parent;
  }
  if (!ips.empty() && format::IsStackCutMarker(ips.back())) ips.pop_back();
  for (uint64_t ip : ips) {
    if (symbolizer.FindModule(ip) == nullptr) *provisional = true;
  }
  return ClassifySite(ips, symbolizer);
}

bool SiteClassifier::FactsOf(uint64_t node, const StackTrie& nodes, Symbolizer& symbolizer,
                             Facts* out) {
  // Up to the first node already known, or the root.
  path_.clear();
  Facts base;  // of the empty chain above the root
  for (uint64_t n = node; n != 0;) {
    if (const Facts* known = Remembered(n); known != nullptr) {
      base = *known;
      break;
    }
    StackNode sn;
    if (!nodes.Find(n, &sn)) return false;
    bool root = sn.parent == n || sn.parent == 0;
    path_.push_back({n, sn.ip, root});
    if (path_.size() > kMaxDepth) return false;
    if (root) break;
    n = sn.parent;
  }
  // Down again, each node's facts from its parent's.
  for (size_t i = path_.size(); i-- > 0;) {
    const PathEntry& e = path_[i];
    base = Extend(base, e.ip, e.root, symbolizer);
    Remember(e.node, base);
  }
  *out = base;
  return base.nodes < kMaxDepth;
}

void SiteClassifier::Defined(uint64_t node, uint64_t parent, uint64_t ip,
                             Symbolizer& symbolizer) {
  // FactsOf's walk would stop at the parent and fold this one frame in:
  // the same facts, now, from a parent remembered already (its entry and
  // this node's just written, in cache). A parent not remembered (not
  // defined yet, or defined before the last Reset) leaves the node to
  // that walk.
  const bool root = parent == node || parent == 0;
  Facts base;  // of the empty chain above the root
  if (!root) {
    const Facts* known = Remembered(parent);
    if (known == nullptr) return;
    base = *known;
  }
  Remember(node, Extend(base, ip, root, symbolizer));
}

void SiteClassifier::RememberSlow(uint64_t node, Facts f) {
  // f.known is set and remembered_ counted (Remember).
  if (node >= kDenseLimit) {
    facts_[node] = f;
    return;
  }
  uint64_t page = node >> kPageBits;
  if (page >= pages_.size()) {
    pages_.reserve(std::max<size_t>(page + 1, 2 * pages_.size()));
    pages_.resize(page + 1);
  }
  if (pages_[page] == nullptr) pages_[page] = std::make_unique<Facts[]>(kPageNodes);
  pages_[page][node & (kPageNodes - 1)] = f;
}

const SiteClassifier::ModuleFacts& SiteClassifier::FactsOfModule(const Module* module) {
  if (module == nullptr) {
    static constexpr ModuleFacts kNone;
    return kNone;
  }
  auto [it, inserted] = module_facts_.try_emplace(module);
  if (inserted) {
    it->second.module = module;
    it->second.runtime = IsRuntimeFrame(module);
    it->second.libstdcxx = MayHoldEhPool(*module);
  }
  return it->second;
}

const SiteClassifier::ModuleFacts& SiteClassifier::FactsOfFrameSlow(uint64_t ip,
                                                                    Symbolizer& symbolizer) {
  const Module* module = symbolizer.FindModuleSpan(ip, &span_first_, &span_last_);
  span_facts_ = FactsOfModule(module);
  return span_facts_;
}

SiteKind SiteClassifier::Classify(uint64_t stack, const StackTrie& nodes,
                                  Symbolizer& symbolizer, bool* provisional) {
  Facts leaf;
  if (!FactsOf(stack, nodes, symbolizer, &leaf)) {
    return ClassifyWalking(stack, nodes, symbolizer, provisional);
  }
  if (!leaf.all_found) *provisional = true;
  if (leaf.frames == 0) return SiteKind::kProgram;
  if (leaf.all_runtime) return SiteKind::kRuntime;
  // The innermost frames: heapsight's and the allocator's are dropped
  // (never the last frame), the first one kept decides rules 1 and 2, and
  // rule 3 looks at it and every frame above it.
  uint64_t node = stack;
  Facts facts = leaf;
  for (;;) {
    StackNode parent_ip;
    nodes.Find(node, &parent_ip);  // known: a node of the stack
    uint64_t ip = parent_ip.ip;
    if (facts.frames >= 2 && IsLeadingAllocator(ip, symbolizer)) {
      node = parent_ip.parent;
      FactsOf(node, nodes, symbolizer, &facts);  // known: a node of the stack
      continue;
    }
    if (IsRuntimeTop(ip, symbolizer)) return SiteKind::kRuntime;
    return facts.eh_pool ? SiteKind::kRuntime : SiteKind::kProgram;
  }
}

bool SiteClassifier::IsLeadingAllocator(uint64_t ip, Symbolizer& symbolizer) {
  uint8_t& bits = top_facts_[ip];
  if ((bits & kAllocatorKnown) == 0) {
    bits |= kAllocatorKnown;
    if (IsLeadingAllocatorFrame(ip, symbolizer.FindModule(ip), symbolizer)) bits |= kAllocator;
  }
  return (bits & kAllocator) != 0;
}

bool SiteClassifier::IsRuntimeTop(uint64_t ip, Symbolizer& symbolizer) {
  uint8_t& bits = top_facts_[ip];
  if ((bits & kTopKnown) == 0) {
    bits |= kTopKnown;
    if (ClassifyTopFrame(ip, symbolizer.FindModule(ip), symbolizer) == SiteKind::kRuntime) {
      bits |= kTopRuntime;
    }
  }
  return (bits & kTopRuntime) != 0;
}

}  // namespace heapsight::analyzer
