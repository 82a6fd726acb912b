// Module scopes: calling a module (Module::operator()) tags the nodes recorded inside it with
// the module's path, nested modules nest their clusters in the DOT graph, the scope is
// restored after an exception, and the inspection switches cost nothing when off.
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"
#include "xgrad/nn/activation.hpp"
#include "xgrad/nn/linear.hpp"
#include "xgrad/nn/mlp.hpp"
#include "xgrad/nn/sequential.hpp"
#include "xgrad/viz/dot.hpp"

using namespace xgrad;

namespace {

// A model with a nested child: encoder = Sequential(Linear, Tanh), head = Linear.
class AutoEncoder : public nn::Module {
 public:
  AutoEncoder() {
    encoder = register_module(
        "encoder", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<Module>>{
                       std::make_shared<nn::Linear>(4, 3), std::make_shared<nn::Tanh>()}));
    head = register_module("head", std::make_shared<nn::Linear>(3, 4));
  }
  std::string type_name() const override { return "AutoEncoder"; }
  std::shared_ptr<nn::Sequential> encoder;
  std::shared_ptr<nn::Linear> head;

 protected:
  Tensor forward(const Tensor& x) override { return (*head)((*encoder)(x)) - x; }
};

// A module that throws in the middle of its forward.
class Throws : public nn::Module {
 protected:
  Tensor forward(const Tensor& x) override {
    Tensor y = x * 2.0;
    throw std::runtime_error("boom");
    return y;
  }
};

class Holder : public nn::Module {
 public:
  Holder() { inner = register_module("inner", std::make_shared<Throws>()); }
  std::shared_ptr<Throws> inner;

 protected:
  Tensor forward(const Tensor& x) override { return (*inner)(x); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(module_scope)

BOOST_AUTO_TEST_CASE(nodes_record_the_path_of_their_module) {
  manual_seed(0);
  nn::MLP mlp({4, 3, 2});
  BOOST_TEST(mlp.path() == "");
  BOOST_TEST(mlp.layers()[1]->path() == "fc2");
  Tensor out = mlp(randn({2, 4}));
  const autograd::Node* fc2 = out.grad_fn().get();
  BOOST_TEST(fc2->name() == "linear");
  BOOST_TEST(nn::scope_path(*fc2) == "fc2");
  BOOST_TEST(nn::module_scope(*fc2)->type == "Linear");
  const autograd::Node* relu = fc2->next_edges()[0].fn.get();
  BOOST_TEST(relu->name() == "relu");
  BOOST_TEST(nn::scope_path(*relu) == "");  // recorded by MLP::forward itself: the root, no cluster
  // A parameter's accumulator is made when its module first uses it: in that module.
  BOOST_TEST(nn::scope_path(*fc2->next_edges()[1].fn) == "fc2");
  BOOST_TEST(nn::current_scope() == nullptr);
  // Ops outside any module have no scope.
  Tensor y = (randn({2}).requires_grad_() * 2.0);
  BOOST_TEST(nn::scope_path(*y.grad_fn()) == "");
}

BOOST_AUTO_TEST_CASE(nested_modules_give_nested_clusters) {
  manual_seed(1);
  AutoEncoder model;
  BOOST_TEST(model.encoder->children()[0].second->path() == "encoder.0");
  Tensor x = randn({2, 4}).requires_grad_();
  Tensor loss = model(x).pow(2.0).sum();
  const std::string dot = viz::to_dot({loss});
  const auto enc = dot.find("subgraph \"cluster_encoder\" {");
  const auto lin = dot.find("subgraph \"cluster_encoder.0\" {");
  const auto tanh_cluster = dot.find("subgraph \"cluster_encoder.1\" {");
  const auto head = dot.find("subgraph \"cluster_head\" {");
  BOOST_REQUIRE(enc != std::string::npos);
  BOOST_REQUIRE(lin != std::string::npos);
  BOOST_REQUIRE(tanh_cluster != std::string::npos);
  BOOST_REQUIRE(head != std::string::npos);
  // encoder.0 and encoder.1 are inside encoder: opened after it, before it closes (the
  // encoder's block ends before head's begins).
  BOOST_TEST(enc < lin);
  BOOST_TEST(lin < tanh_cluster);
  BOOST_TEST(tanh_cluster < head);
  BOOST_TEST(dot.find("label=\"encoder.0 (Linear)\"") != std::string::npos);
  BOOST_TEST(dot.find("label=\"encoder.1 (Tanh)\"") != std::string::npos);
  BOOST_TEST(dot.find("label=\"encoder (Sequential)\"") != std::string::npos);
  BOOST_TEST(dot.find("\"encoder.0.weight\\n[3,4]\"") != std::string::npos);
  // clusters = false: a flat graph with the same nodes.
  viz::DotOptions flat;
  flat.clusters = false;
  const std::string f = viz::to_dot({loss}, flat);
  BOOST_TEST(f.find("subgraph \"cluster_") == std::string::npos);
  BOOST_TEST(f.find("\"encoder.0.weight\\n[3,4]\"") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(scope_is_restored_after_an_exception) {
  Holder h;
  Tensor x = randn({2}).requires_grad_();
  BOOST_CHECK_THROW(h(x), std::runtime_error);
  BOOST_TEST(nn::current_scope() == nullptr);
  BOOST_TEST(nn::scope_path(*(x * 1.0).grad_fn()) == "");
}

BOOST_AUTO_TEST_CASE(scope_guard_nests_and_null_keeps_the_enclosing_scope) {
  const nn::ModuleScope* a = nn::intern_scope("a", "A");
  BOOST_TEST(nn::intern_scope("a", "A") == a);  // interned
  Tensor x = randn({2}).requires_grad_();
  {
    nn::ScopeGuard ga(a);
    {
      nn::ScopeGuard none(nullptr);
      BOOST_TEST(nn::scope_path(*(x * 1.0).grad_fn()) == "a");
    }
    {
      nn::ScopeGuard gb(nn::intern_scope("a.b", "B"));
      BOOST_TEST(nn::scope_path(*(x * 1.0).grad_fn()) == "a.b");
    }
    BOOST_TEST(nn::scope_path(*(x * 1.0).grad_fn()) == "a");
    // Per thread: another thread records outside any scope.
    std::string other = "unset";
    std::thread t([&] { other = std::string(nn::scope_path(*(x * 1.0).grad_fn())); });
    t.join();
    BOOST_TEST(other == "");
  }
  BOOST_TEST(nn::current_scope() == nullptr);
}

BOOST_AUTO_TEST_CASE(inspection_switches_cost_nothing_when_off) {
  Tensor x = randn({2}).requires_grad_();
  Tensor data = randn({2});
  Tensor y = x * data;
  BOOST_TEST(y.grad_fn()->debug_info() == nullptr);  // no call stack, no data inputs
  BOOST_TEST(autograd::detail::record_flags() == 0u);
  {
    viz::record_data_inputs guard;
    { viz::record_data_inputs nested; }
    BOOST_TEST(autograd::detail::record_flags() == unsigned(autograd::detail::record_data_inputs));
    Tensor z = x * data.set_name("data");
    const autograd::NodeDebugInfo* d = z.grad_fn()->debug_info();
    BOOST_REQUIRE(d != nullptr);
    BOOST_REQUIRE(d->data_inputs.size() == 1u);
    BOOST_TEST(d->data_inputs[0].slot == 1u);
    BOOST_TEST(d->data_inputs[0].name == "data");
    BOOST_TEST(d->call_stack.empty());
  }
  BOOST_TEST(autograd::detail::record_flags() == 0u);
}

BOOST_AUTO_TEST_CASE(enter_scope_serves_other_entry_points) {
  // What a module with forward(x, state) does: enter its scope by hand.
  struct Cell : nn::Module {
    Cell() { weight = register_parameter("weight", ones({2})); }
    Tensor weight;
    Tensor step(const Tensor& x, const Tensor& h) {
      auto scope = enter_scope();
      return x * weight + h;
    }

   protected:
    Tensor forward(const Tensor& x) override { return step(x, zeros_like(x)); }
  };
  struct Net : nn::Module {
    Net() { cell = register_module("cell", std::make_shared<Cell>()); }
    std::shared_ptr<Cell> cell;

   protected:
    Tensor forward(const Tensor& x) override { return cell->step(x, x); }
  };
  Net net;
  Tensor y = net(randn({2}));
  BOOST_TEST(nn::scope_path(*y.grad_fn()) == "cell");
  BOOST_TEST(nn::current_scope() == nullptr);
}

BOOST_AUTO_TEST_SUITE_END()
