#include "xgrad/distributed/ddp.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_set>
#include <vector>

#include "mpi_detail.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/distributed/collectives.hpp"
#include "xgrad/distributed/init.hpp"
#include "xgrad/error.hpp"

namespace xgrad::distributed {

namespace {

template <class T>
void scale_into(T* dst, const T* src, std::int64_t n, T divisor) {
  for (std::int64_t i = 0; i < n; ++i) dst[i] = src[i] / divisor;
}

}  // namespace

struct DistributedDataParallel::Reducer {
  DDPOptions options;
  std::vector<Tensor> params;
  std::vector<std::string> names;
  std::vector<DDPBucket> buckets;
  std::vector<Tensor> buffers;          // one flat tensor per bucket
  std::vector<std::size_t> bucket_of;   // parameter -> its bucket
  std::vector<std::int64_t> offset_of;  // parameter -> first element in its bucket
  std::vector<MPI_Request> requests;    // per bucket; MPI_REQUEST_NULL unless in flight
  int world = 1;

  // The state of one backward, set up by arm() after each forward.
  bool armed = false;
  bool any_ready_by_hook = false;
  std::vector<char> ready, has_grad;
  std::vector<std::int64_t> pending;  // per bucket: parameters not ready yet
  std::size_t next_launch = 0, remaining = 0, in_flight = 0;

  void notify(DDPEvent::Kind kind, std::size_t index) const {
    if (options.observer) options.observer({kind, index});
  }

  std::string bucket_what(std::size_t b) const {
    return "DistributedDataParallel all-reduce of bucket " + std::to_string(b) + " of " +
           std::to_string(buckets.size()) + " (" + std::to_string(buckets[b].bytes()) + " bytes)";
  }

  // After a forward whose output has a graph: which parameters will get a gradient.
  void arm(const Tensor& output) {
    if (!output.defined() || !output.grad_fn()) return;
    if (armed && any_ready_by_hook) {
      std::string missing;
      for (std::size_t i = 0; i < params.size(); ++i)
        if (!ready[i]) missing += (missing.empty() ? "'" : ", '") + names[i] + "'";
      fail("DistributedDataParallel: the previous backward ended before the gradients of ", missing,
           " were computed, although the forward used them, so they were not averaged (a "
           "gradient that came out undefined?)");
    }
    const std::size_t n = params.size();
    ready.assign(n, 0);
    has_grad.assign(n, 0);
    pending.clear();
    for (const auto& b : buckets) pending.push_back(static_cast<std::int64_t>(b.parameters.size()));
    next_launch = 0;
    remaining = n;
    any_ready_by_hook = false;
    // Walk the graph from the output to the leaves' accumulators (torch's
    // find_unused_parameters): a parameter not reached gets no gradient from this backward.
    std::unordered_set<const TensorImpl*> used;
    std::unordered_set<const autograd::Node*> seen;
    std::vector<autograd::Node*> stack{output.grad_fn().get()};
    while (!stack.empty()) {
      autograd::Node* node = stack.back();
      stack.pop_back();
      if (!seen.insert(node).second) continue;
      if (node->is_accumulator()) {
        if (const TensorImpl* leaf = node->leaf()) used.insert(leaf);
        continue;
      }
      for (const auto& e : node->next_edges())
        if (e.valid()) stack.push_back(e.fn.get());
    }
    armed = true;
    for (std::size_t i = 0; i < n; ++i)
      if (!used.count(params[i].impl().get())) mark_ready(i);
  }

  // The hook of parameter i, after backward accumulated its gradient.
  void on_gradient(std::size_t i, const Tensor& leaf) {
    if (!armed) return;  // a backward through a graph not made by the module's forward
    if (ready[i])
      fail("DistributedDataParallel: parameter '", names[i],
           "' got a gradient that the module's forward did not lead to (used outside the "
           "forward, or a second backward through one forward): only gradients through the "
           "forward are averaged");
    const Tensor g = leaf.grad();
    check(!g.requires_grad(),
          "DistributedDataParallel: backward with create_graph is not "
          "supported (parameter '",
          names[i], "')");
    const Tensor src = g.is_contiguous() ? g : g.contiguous();
    const std::size_t b = bucket_of[i];
    const std::size_t esize = element_size(buckets[b].dtype);
    auto* dst = static_cast<char*>(buffers[b].raw_data()) + offset_of[i] * esize;
    std::memcpy(dst, src.raw_data(), static_cast<std::size_t>(src.numel()) * esize);
    has_grad[i] = 1;
    any_ready_by_hook = true;
    notify(DDPEvent::ready, i);
    mark_ready(i);
    if (armed && in_flight > 0) progress();
  }

  void mark_ready(std::size_t i) {
    ready[i] = 1;
    --remaining;
    if (--pending[bucket_of[i]] == 0 && options.overlap) launch_ready();
    if (remaining == 0) finish();
  }

  // Starts the buckets that are complete, in index order (every rank must start the same
  // collectives in the same order).
  void launch_ready() {
    while (next_launch < buckets.size() && pending[next_launch] == 0) launch(next_launch++);
  }

  void launch(std::size_t b) {
    const DDPBucket& bucket = buckets[b];
    const std::size_t esize = element_size(bucket.dtype);
    for (std::size_t i : bucket.parameters)  // no gradient here: a zero in the average
      if (!has_grad[i])
        std::memset(static_cast<char*>(buffers[b].raw_data()) + offset_of[i] * esize, 0,
                    static_cast<std::size_t>(params[i].numel()) * esize);
    detail::check_mpi(
        MPI_Iallreduce(MPI_IN_PLACE, buffers[b].raw_data(), static_cast<int>(bucket.numel),
                       detail::mpi_type(bucket.dtype, "DistributedDataParallel"), MPI_SUM,
                       MPI_COMM_WORLD, &requests[b]),
        bucket_what(b));
    ++in_flight;
    notify(DDPEvent::launched, b);
  }

  // Lets MPI move the buckets in flight along (Open MPI progresses only inside MPI calls).
  void progress() {
    for (std::size_t b = 0; b < next_launch; ++b) {
      if (requests[b] == MPI_REQUEST_NULL) continue;
      int done = 0;
      detail::check_mpi(MPI_Test(&requests[b], &done, MPI_STATUS_IGNORE), bucket_what(b));
      if (done) {
        --in_flight;
        notify(DDPEvent::reduced, b);
      }
    }
  }

  // Every gradient is in its bucket: wait for the all-reduces, write the averages back.
  void finish() {
    launch_ready();
    armed = false;
    for (std::size_t b = 0; b < buckets.size(); ++b) {
      if (requests[b] == MPI_REQUEST_NULL) continue;
      std::vector<MPI_Request> one{requests[b]};
      detail::wait_all(one, bucket_what(b));
      requests[b] = MPI_REQUEST_NULL;
      --in_flight;
      notify(DDPEvent::reduced, b);
    }
    no_grad guard;
    for (std::size_t i = 0; i < params.size(); ++i) {
      const std::size_t b = bucket_of[i];
      const Dtype dt = buckets[b].dtype;
      Tensor g = params[i].grad();
      if (!g.defined() || !g.is_contiguous() || g.dtype() != dt || g.requires_grad()) {
        g = empty(params[i].shape(), dt);
        params[i].set_grad(g);
      }
      const std::int64_t n = params[i].numel();
      if (dt == Dtype::float32) {
        scale_into(g.data_ptr<float>(),
                   static_cast<const float*>(buffers[b].raw_data()) + offset_of[i], n,
                   static_cast<float>(world));
      } else {
        scale_into(g.data_ptr<double>(),
                   static_cast<const double*>(buffers[b].raw_data()) + offset_of[i], n,
                   static_cast<double>(world));
      }
    }
    notify(DDPEvent::finished, 0);
  }
};

DistributedDataParallel::DistributedDataParallel(nn::Module& module, DDPOptions options)
    : module_(module), reducer_(std::make_shared<Reducer>()) {
  detail::require_initialized("DistributedDataParallel");
  check(options.bucket_cap_mb > 0 && options.first_bucket_cap_mb > 0,
        "DistributedDataParallel: bucket_cap_mb and first_bucket_cap_mb must be > 0, got ",
        options.bucket_cap_mb, " and ", options.first_bucket_cap_mb);
  Reducer& r = *reducer_;
  r.options = std::move(options);
  r.world = world_size();
  for (auto& [name, p] : module.named_parameters()) {
    check(is_floating(p.dtype()), "DistributedDataParallel: parameter '", name, "' is ",
          dtype_name(p.dtype()), " (float32 or float64 only)");
    r.params.push_back(p);
    r.names.push_back(name);
  }
  check(!r.params.empty(), "DistributedDataParallel: the module has no parameters");
  broadcast_parameters(module, 0);

  // Buckets in reverse registration order, closed when they reach their size (torch's rule).
  const std::size_t n = r.params.size();
  r.bucket_of.assign(n, 0);
  r.offset_of.assign(n, 0);
  constexpr double mib = 1024.0 * 1024.0;
  for (std::size_t k = n; k-- > 0;) {
    const Tensor& p = r.params[k];
    if (r.buckets.empty() || r.buckets.back().dtype != p.dtype()) {
      r.buckets.push_back({{}, p.dtype(), 0});
    } else {
      const double cap =
          (r.buckets.size() == 1 ? r.options.first_bucket_cap_mb : r.options.bucket_cap_mb) * mib;
      if (static_cast<double>(r.buckets.back().bytes()) >= cap)
        r.buckets.push_back({{}, p.dtype(), 0});
    }
    DDPBucket& b = r.buckets.back();
    r.bucket_of[k] = r.buckets.size() - 1;
    r.offset_of[k] = b.numel;
    b.parameters.push_back(k);
    b.numel += p.numel();
  }
  for (const auto& b : r.buckets) r.buffers.push_back(empty({b.numel}, b.dtype));
  r.requests.assign(r.buckets.size(), MPI_REQUEST_NULL);

  std::weak_ptr<Reducer> weak = reducer_;
  for (std::size_t i = 0; i < n; ++i)
    r.params[i].register_post_accumulate_grad_hook([weak, i](const Tensor& leaf) {
      if (auto red = weak.lock()) red->on_gradient(i, leaf);
    });
  pre_hook_ = module.register_forward_pre_hook([weak](nn::Module& m, const Tensor&) {
    auto red = weak.lock();
    if (!red || !red->options.broadcast_buffers || !is_grad_enabled() || !m.is_training()) return;
    for (const Tensor& b : m.buffers()) broadcast(b, 0);
  });
  post_hook_ = module.register_forward_hook([weak](nn::Module&, const Tensor&, const Tensor& out) {
    if (auto red = weak.lock()) red->arm(out);
  });
}

DistributedDataParallel::~DistributedDataParallel() {
  pre_hook_.remove();
  post_hook_.remove();
}

const std::vector<DDPBucket>& DistributedDataParallel::buckets() const {
  return reducer_->buckets;
}

}  // namespace xgrad::distributed
