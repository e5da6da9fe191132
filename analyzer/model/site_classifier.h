// analyzer/model/site_classifier.h: the runtime classification of new call
// sites (runtime_filter.h's ClassifySite) during the pass, remembered per
// stack-trie node.
//
// A site is classified when it first allocates, from its whole stack. Deep
// programs (cc1plus, python's interpreter) make hundreds of thousands of
// sites whose stacks share all but their innermost frames, and classifying
// each from scratch looked up the module of every frame of every stack
// again (81 M FindModule calls on a cc1plus trace). What ClassifySite needs
// from the frames below the innermost few is a fold over the stack: whether
// every frame is in a runtime library (rule 4), whether some frame is
// libstdc++'s EH pool (rule 3), whether every frame's module is known (else
// the site is provisional). Those fold up the trie: a node's facts are its
// frame's combined with its parent's, kept for every node classified
// through, so a new site whose parent node is known looks at one frame
// above its innermost ones. The innermost frames (heapsight's and the
// allocator's, dropped, and the first one kept: rules 1 and 2) are still
// looked at per site.
//
// The answer is ClassifySite's on the stack AnalyzeTrace would walk (at most
// kMaxDepth frames, a root cut marker left out), byte for byte: stacks with
// a node not read yet or deeper than kMaxDepth take that walk itself.
//
// Memory: 4 bytes a node, in an array indexed by node id (ids are dense,
// stack_trie.h) of pages of kPageNodes made when a node of theirs is
// classified through; ids at or above kDenseLimit in a map. (A map of
// every 8th node by depth, before, cost about as much: 12-byte slots at
// abseil's load factors; walks went up to 8 nodes, each a hash probe, and
// were a tenth of a cc1plus trace's pass.)
// The facts depend on the modules: Reset() when the symbolizer changes.
#ifndef HEAPSIGHT_ANALYZER_MODEL_SITE_CLASSIFIER_H_
#define HEAPSIGHT_ANALYZER_MODEL_SITE_CLASSIFIER_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "analyzer/model/stack_trie.h"
#include "analyzer/symbols/runtime_filter.h"
#include "format/trace_format.h"

namespace heapsight::analyzer {

class Symbolizer;

class SiteClassifier {
 public:
  static constexpr size_t kMaxDepth = 4096;  // AnalyzeTrace's stack walk limit
  static constexpr int kPageBits = 12;
  static constexpr uint64_t kPageNodes = uint64_t{1} << kPageBits;  // 16 KiB a page
  static constexpr uint64_t kDenseLimit = StackTrie::kDenseLimit;    // ids above: a map

  // The kind of the site whose leaf node is `stack`; *provisional is set
  // (never cleared) when a node of the stack or the module of a frame is
  // not known yet.
  SiteKind Classify(uint64_t stack, const StackTrie& nodes, Symbolizer& symbolizer,
                    bool* provisional);

  // `node` was just defined as (parent, ip) (StackTrie::Define returned
  // true: the trie holds this definition) while `symbolizer` is the one
  // Classify is given until the next Reset: remembers the node's facts if
  // its parent's are remembered, so that a site's stack is folded once
  // per node as the trie grows instead of by a walk per new site (cc1plus:
  // 533 k nodes, each walked up to and folded down again). Classify's
  // answers are the same either way.
  void Defined(uint64_t node, uint64_t parent, uint64_t ip, Symbolizer& symbolizer);

  // Forgets every node's facts (the modules changed).
  void Reset() {
    pages_.clear();
    remembered_ = 0;
    facts_.clear();
    module_facts_.clear();
    span_first_ = 1;
    span_last_ = 0;
    top_facts_.clear();
  }

  size_t remembered_nodes() const { return remembered_; }
  // Return addresses whose top-frame tests are remembered.
  size_t remembered_top_frames() const { return top_facts_.size(); }

  // The stack walk and ClassifySite without memory (the reference, and the
  // path for stacks the memo does not cover).
  static SiteKind ClassifyWalking(uint64_t stack, const StackTrie& nodes,
                                  Symbolizer& symbolizer, bool* provisional);

 private:
  // 4 bytes (a 12-byte entry with the key); counts saturate at kSaturated,
  // past kMaxDepth, where the walk takes over.
  static constexpr uint32_t kSaturated = 8000;
  struct Facts {
    uint32_t frames : 13 = 0;       // frames from this node to the root (a cut marker not counted)
    uint32_t nodes : 13 = 0;        // nodes from this node to the root
    uint32_t all_runtime : 1 = 1;   // every frame in a runtime library (rule 4)
    uint32_t eh_pool : 1 = 0;       // some frame is libstdc++'s EH pool (rule 3)
    uint32_t all_found : 1 = 1;     // every frame's module is known
    uint32_t known : 1 = 0;         // remembered (an array slot without it: not yet)
  };
  static_assert(sizeof(Facts) == 4);
  // The facts of `node` and its ancestors; false if a node is missing or
  // the chain is deeper than kMaxDepth.
  bool FactsOf(uint64_t node, const StackTrie& nodes, Symbolizer& symbolizer, Facts* out);
  // The facts of a node with frame `ip` (a root: `root`) under a parent
  // with facts `base` (a root's: Facts{}). Inlined into Defined, which
  // calls it for every node of the trace (533 k on cc1plus: the calls of
  // this and of the lookups below were half of Defined's instructions).
  [[gnu::always_inline]] Facts Extend(Facts base, uint64_t ip, bool root,
                                      Symbolizer& symbolizer) {
    Facts f = base;
    f.nodes = std::min<uint32_t>(base.nodes + 1, kSaturated);
    // A cut marker is the root's ip, never a frame.
    if (!(root && format::IsStackCutMarker(ip))) {
      const ModuleFacts& m = FactsOfFrame(ip, symbolizer);
      f.frames = std::min<uint32_t>(base.frames + 1, kSaturated);
      f.all_runtime = base.all_runtime && m.runtime;
      f.eh_pool = base.eh_pool || (m.libstdcxx && IsEhPoolFrame(ip, m.module, symbolizer));
      f.all_found = base.all_found && m.module != nullptr;
    }
    return f;
  }

  // What the rules ask of a frame's module alone, asked once per module
  // (the runtime_filter.h tests compare its path with a dozen names, and
  // a cc1plus trace asks for 890 k new nodes: 6% of the pass): rule 4's
  // runtime library, and whether the module is libstdc++, outside which no
  // frame is rule 3's EH pool (MayHoldEhPool, IsEhPoolFrame's first test) and the
  // frame's name is not looked up.
  struct ModuleFacts {
    const Module* module = nullptr;  // symbolizer.FindModule's answer
    bool runtime = false;
    bool libstdcxx = false;
  };
  const ModuleFacts& FactsOfModule(const Module* module);
  // The facts of the module of `ip`: those of the last frame's when `ip`
  // lies where the symbolizer's answer is the same (span_first_ to
  // span_last_: most frames of a stack are in the module of the one
  // before, and a compiler's nearly all in its executable), else looked up.
  [[gnu::always_inline]] const ModuleFacts& FactsOfFrame(uint64_t ip, Symbolizer& symbolizer) {
    if (ip >= span_first_ && ip <= span_last_) [[likely]] return span_facts_;
    return FactsOfFrameSlow(ip, symbolizer);
  }
  const ModuleFacts& FactsOfFrameSlow(uint64_t ip, Symbolizer& symbolizer);

  // The remembered facts of `node`, or null.
  [[gnu::always_inline]] const Facts* Remembered(uint64_t node) const {
    if (node < kDenseLimit) {
      uint64_t page = node >> kPageBits;
      if (page >= pages_.size() || pages_[page] == nullptr) return nullptr;
      const Facts& f = pages_[page][node & (kPageNodes - 1)];
      return f.known ? &f : nullptr;
    }
    auto it = facts_.find(node);
    return it == facts_.end() ? nullptr : &it->second;
  }
  [[gnu::always_inline]] void Remember(uint64_t node, Facts f) {
    f.known = 1;
    ++remembered_;
    if (node < kDenseLimit) {
      uint64_t page = node >> kPageBits;
      if (page < pages_.size() && pages_[page] != nullptr) [[likely]] {
        pages_[page][node & (kPageNodes - 1)] = f;
        return;
      }
    }
    RememberSlow(node, f);
  }
  void RememberSlow(uint64_t node, Facts f);  // a new page, or a node above kDenseLimit

  std::vector<std::unique_ptr<Facts[]>> pages_;  // by node id; null: none of that page yet
  absl::flat_hash_map<uint64_t, Facts> facts_;   // nodes at or above kDenseLimit
  size_t remembered_ = 0;
  absl::flat_hash_map<const Module*, ModuleFacts> module_facts_;  // by the symbolizer's modules
  // FactsOfFrame's last answer and the addresses it holds for (none:
  // first > last).
  uint64_t span_first_ = 1;
  uint64_t span_last_ = 0;
  ModuleFacts span_facts_;
  // The top-frame tests of Classify (rules 1 and 2, and whether the frame
  // is a leading allocator frame to drop), per return address, each asked
  // once: a cc1plus trace makes 93 k sites from far fewer distinct top
  // frames, and each test looked up the frame's module, its memoized name
  // (a hash probe) and its module's base name (a string copy) again,
  // about 100 M instructions.
  enum TopBits : uint8_t {
    kAllocatorKnown = 1,
    kAllocator = 2,
    kTopKnown = 4,
    kTopRuntime = 8,
  };
  bool IsLeadingAllocator(uint64_t ip, Symbolizer& symbolizer);
  bool IsRuntimeTop(uint64_t ip, Symbolizer& symbolizer);
  absl::flat_hash_map<uint64_t, uint8_t> top_facts_;

  struct PathEntry {
    uint64_t node;
    uint64_t ip;
    bool root;
  };
  std::vector<PathEntry> path_;  // scratch of FactsOf
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_SITE_CLASSIFIER_H_
