// Fused CPU kernels for the inference graphs of gluon_asymmnet, as an MXNet 1.9
// operator library (include/mxnet/lib_api.h, loaded with mx.library.load).
//
// MXNet's own element-wise kernels run scalar loops: hard swish as
// hard_sigmoid + elemwise_mul, and the squeeze-and-excitation rescale
// (broadcast_mul), take 4-5x the time of one pass over the data
// (benchmarks/bench_fastops.py). These do the same arithmetic in one vectorised, OpenMP-parallel
// pass, with results bit-identical to MXNet's operators (built with
// -ffp-contract=off, so no fused multiply-adds change the rounding); the
// global average pooling for their plain-layout outputs sums in double.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "mxnet/lib_api.h"

using namespace mxnet::ext;
using Attrs = std::unordered_map<std::string, std::string>;
using Shapes = std::vector<std::vector<unsigned int>>;

namespace {

// Below this many elements one thread is faster than waking the others.
const int64_t kParallelMin = 1 << 15;

inline float hard_sigmoid(float v) {
  // MXNet's hard_sigmoid(alpha=1/6, beta=0.5): clip(alpha * v + beta, 0, 1).
  float g = v * (1.0f / 6.0f) + 0.5f;
  g = g > 0.0f ? g : 0.0f;
  return g < 1.0f ? g : 1.0f;
}

constexpr char kHardSwish[] = "ga_hard_swish";
constexpr char kChannelScale[] = "ga_channel_scale";
constexpr char kGlobalAvgPool[] = "ga_global_avg_pool";

template <int kInputs>
MXReturnValue parse_inputs(const Attrs&, int* num_in, int* num_out) {
  *num_in = kInputs;
  *num_out = 1;
  return MX_SUCCESS;
}

// Every operator here takes float32 inputs and gives a float32 output.
template <const char* kName>
MXReturnValue float32_type(const Attrs&, std::vector<int>* in, std::vector<int>* out) {
  for (int t : *in) {
    if (t != kFloat32) {
      MX_ERROR_MSG << kName << ": float32 inputs only, got dtype code " << t;
      return MX_FAIL;
    }
  }
  (*out)[0] = kFloat32;
  return MX_SUCCESS;
}

// ---- ga_hard_swish(x) = x * hard_sigmoid(x) --------------------------------

MXReturnValue hs_shape(const Attrs&, Shapes* in, Shapes* out) {
  (*out)[0] = (*in)[0];
  return MX_SUCCESS;
}

MXReturnValue hs_forward(const Attrs&, std::vector<MXTensor>* in, std::vector<MXTensor>* out,
                         const OpResource&) {
  const float* x = (*in)[0].data<float>();
  float* y = (*out)[0].data<float>();
  const int64_t n = (*in)[0].size();
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * hard_sigmoid(x[i]);
  return MX_SUCCESS;
}

// inputs: dy, x, y; outputs: dx. d/dx = g + x * g' with g' = 1/6 inside (-3, 3).
MXReturnValue hs_backward(const Attrs&, std::vector<MXTensor>* in, std::vector<MXTensor>* out,
                          const OpResource&) {
  const float* dy = (*in)[0].data<float>();
  const float* x = (*in)[1].data<float>();
  float* dx = (*out)[0].data<float>();
  const int64_t n = (*in)[1].size();
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float inside = (v > -3.0f && v < 3.0f) ? v * (1.0f / 6.0f) : 0.0f;
    dx[i] = dy[i] * (hard_sigmoid(v) + inside);
  }
  return MX_SUCCESS;
}

// ---- ga_channel_scale(x, s): x (N, C, H, W) times s (N, C, 1, 1) -----------

MXReturnValue cs_shape(const Attrs&, Shapes* in, Shapes* out) {
  const auto& x = (*in)[0];
  const auto& s = (*in)[1];
  if (x.size() != 4 || s.size() != 4 || s[0] != x[0] || s[1] != x[1] || s[2] != 1 || s[3] != 1) {
    MX_ERROR_MSG << kChannelScale << ": needs x (N, C, H, W) and s (N, C, 1, 1)";
    return MX_FAIL;
  }
  (*out)[0] = x;
  return MX_SUCCESS;
}

MXReturnValue cs_forward(const Attrs&, std::vector<MXTensor>* in, std::vector<MXTensor>* out,
                         const OpResource&) {
  const float* x = (*in)[0].data<float>();
  const float* s = (*in)[1].data<float>();
  float* y = (*out)[0].data<float>();
  const int64_t planes = (*in)[1].size();
  const int64_t hw = planes ? (*in)[0].size() / planes : 0;
#pragma omp parallel for schedule(static) if (planes * hw >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const float k = s[p];
    const float* xp = x + p * hw;
    float* yp = y + p * hw;
#pragma omp simd
    for (int64_t i = 0; i < hw; ++i) yp[i] = xp[i] * k;
  }
  return MX_SUCCESS;
}

// inputs: dy, x, s, y; outputs: dx, ds.
MXReturnValue cs_backward(const Attrs&, std::vector<MXTensor>* in, std::vector<MXTensor>* out,
                          const OpResource&) {
  const float* dy = (*in)[0].data<float>();
  const float* x = (*in)[1].data<float>();
  const float* s = (*in)[2].data<float>();
  float* dx = (*out)[0].data<float>();
  float* ds = (*out)[1].data<float>();
  const int64_t planes = (*in)[2].size();
  const int64_t hw = planes ? (*in)[1].size() / planes : 0;
#pragma omp parallel for schedule(static) if (planes * hw >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const float k = s[p];
    const float* dyp = dy + p * hw;
    const float* xp = x + p * hw;
    float* dxp = dx + p * hw;
    float acc = 0.0f;
    for (int64_t i = 0; i < hw; ++i) {
      dxp[i] = dyp[i] * k;
      acc += dyp[i] * xp[i];
    }
    ds[p] = acc;
  }
  return MX_SUCCESS;
}

// ---- ga_global_avg_pool(x): mean over H and W, (N, C, H, W) -> (N, C, 1, 1) -----
// For input in plain layout (the output of the operators above), where oneDNN's pooling runs its
// slow plain-layout kernel. Sums in double, so the mean is float32-rounded once.

MXReturnValue gp_shape(const Attrs&, Shapes* in, Shapes* out) {
  const auto& x = (*in)[0];
  if (x.size() != 4) {
    MX_ERROR_MSG << kGlobalAvgPool << ": needs x (N, C, H, W), got " << x.size() << " dimensions";
    return MX_FAIL;
  }
  (*out)[0] = {x[0], x[1], 1, 1};
  return MX_SUCCESS;
}

MXReturnValue gp_forward(const Attrs&, std::vector<MXTensor>* in, std::vector<MXTensor>* out,
                         const OpResource&) {
  const float* x = (*in)[0].data<float>();
  float* y = (*out)[0].data<float>();
  const int64_t planes = (*out)[0].size();
  const int64_t hw = planes ? (*in)[0].size() / planes : 0;
#pragma omp parallel for schedule(static) if (planes * hw >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const float* xp = x + p * hw;
    double acc = 0.0;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < hw; ++i) acc += xp[i];
    y[p] = static_cast<float>(acc / static_cast<double>(hw));
  }
  return MX_SUCCESS;
}

// inputs: dy, x, y; outputs: dx = dy / (H * W) everywhere in the plane.
MXReturnValue gp_backward(const Attrs&, std::vector<MXTensor>* in, std::vector<MXTensor>* out,
                          const OpResource&) {
  const float* dy = (*in)[0].data<float>();
  float* dx = (*out)[0].data<float>();
  const int64_t planes = (*in)[0].size();
  const int64_t hw = planes ? (*out)[0].size() / planes : 0;
#pragma omp parallel for schedule(static) if (planes * hw >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const float g = dy[p] / static_cast<float>(hw);
    float* dxp = dx + p * hw;
    for (int64_t i = 0; i < hw; ++i) dxp[i] = g;
  }
  return MX_SUCCESS;
}

}  // namespace

REGISTER_OP(ga_hard_swish)
    .setParseAttrs(parse_inputs<1>)
    .setInferType(float32_type<kHardSwish>)
    .setInferShape(hs_shape)
    .setForward(hs_forward, "cpu")
    .setBackward(hs_backward, "cpu");

REGISTER_OP(ga_channel_scale)
    .setParseAttrs(parse_inputs<2>)
    .setInferType(float32_type<kChannelScale>)
    .setInferShape(cs_shape)
    .setForward(cs_forward, "cpu")
    .setBackward(cs_backward, "cpu");

REGISTER_OP(ga_global_avg_pool)
    .setParseAttrs(parse_inputs<1>)
    .setInferType(float32_type<kGlobalAvgPool>)
    .setInferShape(gp_shape)
    .setForward(gp_forward, "cpu")
    .setBackward(gp_backward, "cpu");

MXReturnValue initialize(int version) {
  if (version < 10900) {
    MX_ERROR_MSG << "gluon_asymmnet fastops need MXNet >= 1.9.0, found version code " << version;
    return MX_FAIL;
  }
  return MX_SUCCESS;
}
