// network: oneDNN primitives created once per network, buffers allocated once.
#include "nn.hpp"

#include <dnnl.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <utility>

namespace loom::ops::train {

const char* to_string(activation a) {
  switch (a) {
    case activation::relu: return "relu";
    case activation::tanh: return "tanh";
    case activation::sigmoid: return "sigmoid";
  }
  return "?";
}

const char* to_string(loss_kind k) {
  switch (k) {
    case loss_kind::mse: return "mse";
    case loss_kind::sigmoid_bce: return "sigmoid_bce";
    case loss_kind::softmax_ce: return "softmax_ce";
  }
  return "?";
}

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

/// Floats on a 64-byte boundary, zero-filled, allocated once.
class floats {
public:
  floats() = default;
  explicit floats(size_t n) : n_(n) {
    size_t bytes = std::max<size_t>(64, (n * sizeof(float) + 63) / 64 * 64);
    p_ = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (p_ == nullptr)
      throw std::bad_alloc();
    std::memset(p_, 0, bytes);
  }
  floats(floats&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  floats& operator=(floats&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  ~floats() { std::free(p_); }
  float* data() const { return p_; }
  size_t size() const { return n_; }

private:
  float* p_ = nullptr;
  size_t n_ = 0;
};

size_t round16(size_t n) { return (n + 15) / 16 * 16; }

/// One primitive with its arguments bound once: executing it allocates nothing on our
/// side (the C API takes the argument array as is).
struct step {
  dnnl::primitive prim;
  std::vector<dnnl_exec_arg_t> args;
  bool valid() const { return static_cast<bool>(prim); }
  void run(const dnnl::stream& s) const {
    auto st = dnnl_primitive_execute(prim.get(), s.get(), static_cast<int>(args.size()), args.data());
    if (st != dnnl_success)
      throw std::runtime_error("oneDNN: executing a primitive failed (status " + std::to_string(st) + ")");
  }
};

dnnl::algorithm fwd_algorithm(activation a) {
  switch (a) {
    case activation::relu: return dnnl::algorithm::eltwise_relu;
    case activation::tanh: return dnnl::algorithm::eltwise_tanh;
    case activation::sigmoid: return dnnl::algorithm::eltwise_logistic;
  }
  return dnnl::algorithm::eltwise_relu;
}

dnnl::algorithm bwd_algorithm(activation a) {
  switch (a) {
    case activation::relu: return dnnl::algorithm::eltwise_relu_use_dst_for_bwd;
    case activation::tanh: return dnnl::algorithm::eltwise_tanh_use_dst_for_bwd;
    case activation::sigmoid: return dnnl::algorithm::eltwise_logistic_use_dst_for_bwd;
  }
  return dnnl::algorithm::eltwise_relu_use_dst_for_bwd;
}

} // namespace

struct network::impl {
  struct layer {
    int64_t in = 0, out = 0;
    bool hidden = false;
    bool drop = false; ///< has a dropout mask (hidden, training, rate > 0)
    memory::desc wdesc;
    size_t w_off = 0, w_len = 0, b_off = 0;
    floats a;    ///< forward output: post-activation (hidden) or logits (output layer)
    floats h;    ///< after dropout (drop only)
    floats mask; ///< dropout mask: 0 or 1 / (1 - rate) (drop only)
    floats g;    ///< gradient w.r.t. this layer's output (hidden, training)
    floats dz;   ///< gradient w.r.t. the pre-activation (training)
    step fwd, act_bwd, bwd_w, bwd_d;
    std::string impl_names;
    float* out_ptr() const { return drop ? h.data() : a.data(); }
  };

  net_spec spec;
  int64_t batch = 0;
  bool training = false;
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  std::vector<layer> layers;
  floats owned_params, grads, input, probs, scratch;
  float* params = nullptr; ///< owned_params, or the buffer of the network shared with
  size_t params_len = 0;
  step softmax;
  std::vector<memory> mems; ///< keeps the memory objects the steps point at alive
  bool masks_active = false;

  memory mem(const memory::desc& d, float* p) {
    mems.emplace_back(d, eng, p);
    return mems.back();
  }
  static dnnl_exec_arg_t arg(int which, const memory& m) { return {which, m.get()}; }

  void build(const impl* share) {
    const size_t nl = spec.hidden.size() + 1;
    layers.resize(nl);
    for (size_t l = 0; l < nl; ++l) {
      auto& ly = layers[l];
      ly.in = l == 0 ? spec.inputs : spec.hidden[l - 1];
      ly.out = l + 1 < nl ? spec.hidden[l] : spec.outputs;
      ly.hidden = l + 1 < nl;
      ly.drop = ly.hidden && training && spec.dropout > 0;
    }

    // primitive descriptors; each layer's weights take the layout its forward kernel
    // wants, unless the backward kernels disagree: then plain [out x in] for that layer
    struct pds {
      dnnl::inner_product_forward::primitive_desc fwd;
      dnnl::inner_product_backward_data::primitive_desc bwd_d;
      dnnl::inner_product_backward_weights::primitive_desc bwd_w;
      dnnl::eltwise_backward::primitive_desc act_bwd;
    };
    std::vector<pds> pd(nl);
    dnnl::primitive_attr plain_attr;
    plain_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    size_t scratch_bytes = 0;
    for (size_t l = 0; l < nl; ++l) {
      auto& ly = layers[l];
      memory::desc src({batch, ly.in}, dt::f32, tag::nc), dst({batch, ly.out}, dt::f32, tag::nc),
        bias({ly.out}, dt::f32, tag::x);
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      if (ly.hidden) {
        dnnl::post_ops po;
        po.append_eltwise(1.0f, fwd_algorithm(spec.act), 0.0f, 0.0f);
        attr.set_post_ops(po);
      }
      auto prop = training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
      for (int plain = 0; plain < 2; ++plain) {
        memory::desc w({ly.out, ly.in}, dt::f32, plain ? tag::oi : tag::any);
        pd[l].fwd = dnnl::inner_product_forward::primitive_desc({prop, src, w, bias, dst}, attr, eng);
        ly.wdesc = pd[l].fwd.weights_desc();
        if (!training)
          break;
        memory::desc wl = plain ? w : ly.wdesc;
        pd[l].bwd_w = dnnl::inner_product_backward_weights::primitive_desc({src, wl, bias, dst}, plain_attr, eng,
                                                                            pd[l].fwd);
        if (l > 0)
          pd[l].bwd_d =
            dnnl::inner_product_backward_data::primitive_desc({src, wl, dst}, plain_attr, eng, pd[l].fwd);
        bool same = pd[l].bwd_w.diff_weights_desc() == ly.wdesc && (l == 0 || pd[l].bwd_d.weights_desc() == ly.wdesc);
        if (same)
          break;
        if (plain)
          throw std::runtime_error("oneDNN: no inner product kernels agree on a weight layout");
      }
      scratch_bytes = std::max(scratch_bytes, pd[l].fwd.scratchpad_desc().get_size());
      if (training) {
        scratch_bytes = std::max(scratch_bytes, pd[l].bwd_w.scratchpad_desc().get_size());
        if (l > 0)
          scratch_bytes = std::max(scratch_bytes, pd[l].bwd_d.scratchpad_desc().get_size());
        if (ly.hidden) {
          auto alg = bwd_algorithm(spec.act);
          dnnl::eltwise_forward::primitive_desc hint({dnnl::prop_kind::forward_training, alg, dst, 0.0f, 0.0f}, eng);
          pd[l].act_bwd = dnnl::eltwise_backward::primitive_desc({alg, dst, dst, 0.0f, 0.0f}, plain_attr, eng, hint);
          scratch_bytes = std::max(scratch_bytes, pd[l].act_bwd.scratchpad_desc().get_size());
        }
      }
      ly.impl_names = pd[l].fwd.impl_info_str();
      if (training)
        ly.impl_names += std::string("/") + pd[l].bwd_w.impl_info_str();
    }
    dnnl::softmax_forward::primitive_desc softmax_pd;
    memory::desc logits({batch, spec.outputs}, dt::f32, tag::nc);
    if (spec.loss == loss_kind::softmax_ce) {
      softmax_pd = dnnl::softmax_forward::primitive_desc({dnnl::prop_kind::forward_inference, logits, 1}, plain_attr, eng);
      scratch_bytes = std::max(scratch_bytes, softmax_pd.scratchpad_desc().get_size());
    }

    // buffers, all allocated here and never again
    size_t off = 0;
    for (auto& ly : layers) {
      ly.w_off = off;
      ly.w_len = round16(ly.wdesc.get_size() / sizeof(float));
      off += ly.w_len;
      ly.b_off = off;
      off += round16(static_cast<size_t>(ly.out));
    }
    params_len = off;
    if (share != nullptr) {
      bool same = share->params_len == params_len && share->layers.size() == nl;
      for (size_t l = 0; same && l < nl; ++l)
        same = share->layers[l].wdesc == layers[l].wdesc;
      if (!same)
        throw std::runtime_error("oneDNN: a replica chose another weight layout than the network it shares with");
      params = share->params;
    } else {
      owned_params = floats(params_len);
      params = owned_params.data();
    }
    if (training)
      grads = floats(params_len);
    input = floats(static_cast<size_t>(batch * spec.inputs));
    probs = floats(static_cast<size_t>(batch * spec.outputs));
    scratch = floats((scratch_bytes + sizeof(float) - 1) / sizeof(float));
    memory scratch_mem = mem(memory::desc({static_cast<memory::dim>(std::max<size_t>(scratch_bytes, 1))}, dt::u8, tag::x),
                             scratch.data());
    auto with_scratch = [&](std::vector<dnnl_exec_arg_t> args) {
      args.push_back(arg(DNNL_ARG_SCRATCHPAD, scratch_mem));
      return args;
    };

    memory prev_out;
    for (size_t l = 0; l < nl; ++l) {
      auto& ly = layers[l];
      size_t cells = static_cast<size_t>(batch * ly.out);
      ly.a = floats(cells);
      if (ly.drop) {
        ly.h = floats(cells);
        ly.mask = floats(cells);
      }
      memory::desc src_d({batch, ly.in}, dt::f32, tag::nc), dst_d({batch, ly.out}, dt::f32, tag::nc),
        bias_d({ly.out}, dt::f32, tag::x);
      memory src = l == 0 ? mem(src_d, input.data()) : prev_out;
      memory w = mem(ly.wdesc, params + ly.w_off);
      memory b = mem(bias_d, params + ly.b_off);
      memory a = mem(dst_d, ly.a.data());
      ly.fwd = {dnnl::inner_product_forward(pd[l].fwd),
                with_scratch({arg(DNNL_ARG_SRC, src), arg(DNNL_ARG_WEIGHTS, w), arg(DNNL_ARG_BIAS, b),
                              arg(DNNL_ARG_DST, a)})};
      prev_out = ly.drop ? mem(dst_d, ly.h.data()) : a;
      if (!training)
        continue;
      ly.dz = floats(cells);
      memory dz = mem(dst_d, ly.dz.data());
      if (ly.hidden) {
        ly.g = floats(cells);
        memory g = mem(dst_d, ly.g.data());
        ly.act_bwd = {dnnl::eltwise_backward(pd[l].act_bwd),
                      with_scratch({arg(DNNL_ARG_DST, a), arg(DNNL_ARG_DIFF_DST, g), arg(DNNL_ARG_DIFF_SRC, dz)})};
      }
      memory dw = mem(ly.wdesc, grads.data() + ly.w_off);
      memory db = mem(bias_d, grads.data() + ly.b_off);
      ly.bwd_w = {dnnl::inner_product_backward_weights(pd[l].bwd_w),
                  with_scratch({arg(DNNL_ARG_SRC, src), arg(DNNL_ARG_DIFF_DST, dz), arg(DNNL_ARG_DIFF_WEIGHTS, dw),
                                arg(DNNL_ARG_DIFF_BIAS, db)})};
      if (l > 0) {
        memory dsrc = mem(src_d, layers[l - 1].g.data());
        ly.bwd_d = {dnnl::inner_product_backward_data(pd[l].bwd_d),
                    with_scratch({arg(DNNL_ARG_DIFF_DST, dz), arg(DNNL_ARG_WEIGHTS, w), arg(DNNL_ARG_DIFF_SRC, dsrc)})};
      }
    }
    if (spec.loss == loss_kind::softmax_ce)
      softmax = {dnnl::softmax_forward(softmax_pd),
                 with_scratch({arg(DNNL_ARG_SRC, mem(logits, layers.back().a.data())),
                               arg(DNNL_ARG_DST, mem(logits, probs.data()))})};
  }

  void forward(size_t n, rng* dropout_rng) {
    masks_active = false;
    for (auto& ly : layers) {
      ly.fwd.run(strm);
      if (!ly.drop)
        continue;
      size_t cells = static_cast<size_t>(batch * ly.out);
      if (dropout_rng != nullptr) {
        const float keep_scale = 1.0f / (1.0f - spec.dropout);
        const float rate = spec.dropout;
        size_t live = n * static_cast<size_t>(ly.out);
        float* m = ly.mask.data();
        for (size_t i = 0; i < live; ++i)
          m[i] = dropout_rng->uniform() >= rate ? keep_scale : 0.0f;
        const float* a = ly.a.data();
        float* h = ly.h.data();
        for (size_t i = 0; i < live; ++i)
          h[i] = a[i] * m[i];
        masks_active = true;
      } else {
        std::memcpy(ly.h.data(), ly.a.data(), cells * sizeof(float));
      }
    }
    if (softmax.valid())
      softmax.run(strm);
  }

  /// Loss over rows [0, n); with `grad`, also the gradient w.r.t. the logits (zero in
  /// rows n and after).
  batch_stats loss(size_t n, const float* y, bool grad, size_t total) {
    batch_stats st;
    auto& out = layers.back();
    const size_t k = static_cast<size_t>(spec.outputs);
    const float* z = out.a.data();
    float* dz = grad ? out.dz.data() : nullptr;
    const float inv_n = total > 0 ? 1.0f / static_cast<float>(total) : 0.0f;
    switch (spec.loss) {
      case loss_kind::softmax_ce: {
        const float* p = probs.data();
        for (size_t i = 0; i < n; ++i) {
          const float* zi = z + i * k;
          const float* pi = p + i * k;
          size_t label = static_cast<size_t>(y[i]);
          double m = zi[0];
          size_t best = 0;
          for (size_t c = 1; c < k; ++c) {
            m = std::max(m, static_cast<double>(zi[c]));
            if (pi[c] > pi[best])
              best = c;
          }
          double s = 0;
          for (size_t c = 0; c < k; ++c)
            s += std::exp(static_cast<double>(zi[c]) - m);
          st.loss += m + std::log(s) - static_cast<double>(zi[label]);
          st.correct += best == label;
          if (dz)
            for (size_t c = 0; c < k; ++c)
              dz[i * k + c] = (pi[c] - (c == label ? 1.0f : 0.0f)) * inv_n;
        }
        break;
      }
      case loss_kind::sigmoid_bce:
        for (size_t i = 0; i < n; ++i) {
          double zi = z[i], yi = y[i];
          double p = 1.0 / (1.0 + std::exp(-zi));
          st.loss += std::max(zi, 0.0) - zi * yi + std::log1p(std::exp(-std::abs(zi)));
          st.correct += (p >= 0.5) == (yi >= 0.5);
          if (dz)
            dz[i] = static_cast<float>(p - yi) * inv_n;
        }
        break;
      case loss_kind::mse:
        for (size_t i = 0; i < n; ++i) {
          double d = static_cast<double>(z[i]) - y[i];
          st.loss += d * d;
          st.abs_err += std::abs(d);
          if (dz)
            dz[i] = static_cast<float>(2.0 * d) * inv_n;
        }
        break;
    }
    if (dz)
      std::memset(dz + n * k, 0, (static_cast<size_t>(batch) - n) * k * sizeof(float));
    return st;
  }

  void backward(bool with_penalty) {
    for (size_t l = layers.size(); l-- > 0;) {
      auto& ly = layers[l];
      if (ly.hidden) {
        if (masks_active) {
          float* g = ly.g.data();
          const float* m = ly.mask.data();
          size_t cells = static_cast<size_t>(batch * ly.out);
          for (size_t i = 0; i < cells; ++i)
            g[i] *= m[i];
        }
        ly.act_bwd.run(strm);
      }
      ly.bwd_w.run(strm);
      if (l > 0)
        ly.bwd_d.run(strm);
    }
    strm.wait();
    if (!with_penalty || (spec.l1 == 0 && spec.l2 == 0))
      return;
    const float l1 = spec.l1, l2 = spec.l2;
    for (auto& ly : layers) {
      const float* w = params + ly.w_off;
      float* g = grads.data() + ly.w_off;
      for (size_t i = 0; i < ly.w_len; ++i) {
        float s = w[i] > 0 ? 1.0f : (w[i] < 0 ? -1.0f : 0.0f);
        g[i] += l2 * w[i] + l1 * s;
      }
    }
  }

  void reorder_weights(size_t l, float* plain, bool to_params) {
    auto& ly = layers.at(l);
    memory pm({{ly.out, ly.in}, dt::f32, tag::oi}, eng, plain);
    memory bm(ly.wdesc, eng, params + ly.w_off);
    if (to_params)
      dnnl::reorder(pm, bm).execute(strm, pm, bm);
    else
      dnnl::reorder(bm, pm).execute(strm, bm, pm);
    strm.wait();
  }
};

network::network(const net_spec& spec, int64_t batch, bool training, const network* share_params_with)
  : p_(std::make_unique<impl>()) {
  if (spec.inputs < 1)
    throw std::invalid_argument("the network needs at least one input");
  if (batch < 1)
    throw std::invalid_argument("batch size must be at least 1");
  for (auto h : spec.hidden)
    if (h < 1)
      throw std::invalid_argument("hidden layer sizes must be at least 1");
  if (!(spec.dropout >= 0 && spec.dropout < 1))
    throw std::invalid_argument("dropout must be in [0, 1)");
  if (spec.loss == loss_kind::softmax_ce ? spec.outputs < 2 : spec.outputs != 1)
    throw std::invalid_argument(std::string("loss ") + to_string(spec.loss) + " cannot have " +
                                std::to_string(spec.outputs) + " outputs");
  p_->spec = spec;
  p_->batch = batch;
  p_->training = training;
  try {
    p_->build(share_params_with ? share_params_with->p_.get() : nullptr);
  } catch (const dnnl::error& e) {
    throw std::runtime_error(std::string("oneDNN: building the network failed: ") + e.what());
  }
}

network::~network() = default;

const net_spec& network::spec() const { return p_->spec; }
int64_t network::batch() const { return p_->batch; }
size_t network::num_layers() const { return p_->layers.size(); }
int64_t network::layer_inputs(size_t layer) const { return p_->layers.at(layer).in; }
int64_t network::layer_outputs(size_t layer) const { return p_->layers.at(layer).out; }

size_t network::num_params() const {
  size_t n = 0;
  for (auto& ly : p_->layers)
    n += static_cast<size_t>(ly.in * ly.out + ly.out);
  return n;
}

std::string network::implementation() const {
  std::string s;
  for (auto& ly : p_->layers)
    s += (s.empty() ? "" : ", ") + ly.impl_names;
  return s;
}

std::span<float> network::params() { return {p_->params, p_->params_len}; }
std::span<const float> network::params() const { return {p_->params, p_->params_len}; }
std::span<float> network::grads() {
  if (!p_->training)
    throw std::logic_error("network built without training has no gradients");
  return {p_->grads.data(), p_->params_len};
}

void network::set_layer(size_t layer, std::span<const float> weight, std::span<const float> bias) {
  auto& ly = p_->layers.at(layer);
  if (weight.size() != static_cast<size_t>(ly.in * ly.out) || bias.size() != static_cast<size_t>(ly.out))
    throw std::invalid_argument("layer " + std::to_string(layer) + " takes a " + std::to_string(ly.out) + " x " +
                                std::to_string(ly.in) + " weight and " + std::to_string(ly.out) + " biases");
  p_->reorder_weights(layer, const_cast<float*>(weight.data()), true);
  std::memcpy(p_->params + ly.b_off, bias.data(), bias.size() * sizeof(float));
}

void network::get_layer(size_t layer, std::vector<float>& weight, std::vector<float>& bias) const {
  auto& ly = p_->layers.at(layer);
  weight.assign(static_cast<size_t>(ly.in * ly.out), 0.0f);
  bias.assign(p_->params + ly.b_off, p_->params + ly.b_off + ly.out);
  p_->reorder_weights(layer, weight.data(), false);
}

void network::init(uint64_t seed) {
  std::memset(p_->params, 0, p_->params_len * sizeof(float));
  if (p_->spec.hidden.empty())
    return;
  rng r(seed, 1);
  std::vector<float> w, b;
  for (size_t l = 0; l < p_->layers.size(); ++l) {
    auto& ly = p_->layers[l];
    double fan = ly.hidden && p_->spec.act == activation::relu ? static_cast<double>(ly.in)
                                                                : static_cast<double>(ly.in + ly.out);
    float bound = static_cast<float>(std::sqrt(6.0 / fan));
    w.resize(static_cast<size_t>(ly.in * ly.out));
    for (auto& x : w)
      x = (2.0f * r.uniform() - 1.0f) * bound;
    b.assign(static_cast<size_t>(ly.out), 0.0f);
    set_layer(l, w, b);
  }
}

float* network::input() { return p_->input.data(); }

batch_stats network::train_step(size_t n, const float* target, rng* dropout_rng, size_t total, bool with_penalty) {
  if (!p_->training)
    throw std::logic_error("network built without training cannot train");
  n = std::min(n, static_cast<size_t>(p_->batch));
  p_->forward(n, dropout_rng);
  p_->strm.wait();
  auto st = p_->loss(n, target, true, total);
  p_->backward(with_penalty);
  return st;
}

batch_stats network::evaluate(size_t n, const float* target, rng* dropout_rng) {
  n = std::min(n, static_cast<size_t>(p_->batch));
  p_->forward(n, dropout_rng);
  p_->strm.wait();
  return p_->loss(n, target, false, n);
}

const float* network::predict(size_t n) {
  n = std::min(n, static_cast<size_t>(p_->batch));
  p_->forward(n, nullptr);
  p_->strm.wait();
  switch (p_->spec.loss) {
    case loss_kind::softmax_ce: return p_->probs.data();
    case loss_kind::sigmoid_bce: {
      const float* z = p_->layers.back().a.data();
      float* p = p_->probs.data();
      for (size_t i = 0; i < n; ++i)
        p[i] = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(z[i]))));
      return p;
    }
    case loss_kind::mse: return p_->layers.back().a.data();
  }
  return nullptr;
}

double network::penalty() const {
  const auto& s = p_->spec;
  if (s.l1 == 0 && s.l2 == 0)
    return 0;
  double a = 0, q = 0;
  for (auto& ly : p_->layers) {
    const float* w = p_->params + ly.w_off;
    for (size_t i = 0; i < ly.w_len; ++i) {
      a += std::abs(static_cast<double>(w[i]));
      q += static_cast<double>(w[i]) * w[i];
    }
  }
  return s.l1 * a + 0.5 * s.l2 * q;
}

} // namespace loom::ops::train
