// Cheap glowing sprites: a point cloud of soft round stars (one draw call for the whole
// galaxy) and a camera-facing halo quad for a system's star. Both are additive, so they
// look like glow without a GlowLayer's extra render passes (which cost >100 ms a frame
// under software WebGL).
import { Constants } from "@babylonjs/core/Engines/constants.js";
import { ShaderMaterial } from "@babylonjs/core/Materials/shaderMaterial.js";
import { Mesh } from "@babylonjs/core/Meshes/mesh.js";
import { CreatePlane } from "@babylonjs/core/Meshes/Builders/planeBuilder.js";

const POINTS_VERTEX = `
precision highp float;
attribute vec3 position;
attribute vec4 color;
attribute float size;
uniform mat4 worldViewProjection;
uniform float pixelScale;
varying vec3 vColor;
void main(void) {
  gl_Position = worldViewProjection * vec4(position, 1.0);
  gl_PointSize = clamp(size * pixelScale / max(gl_Position.w, 1e-3), 4.0, 48.0);
  vColor = color.rgb;
}`;

const POINTS_FRAGMENT = `
precision highp float;
varying vec3 vColor;
void main(void) {
  vec2 d = gl_PointCoord * 2.0 - 1.0;
  float r2 = dot(d, d);
  if (r2 > 1.0) discard;
  float core = smoothstep(0.42, 0.18, sqrt(r2));
  float halo = (1.0 - r2) * (1.0 - r2);
  gl_FragColor = vec4(vColor * (core + 0.5 * halo), 1.0);
}`;

const HALO_VERTEX = `
precision highp float;
attribute vec3 position;
attribute vec2 uv;
uniform mat4 worldViewProjection;
varying vec2 vUV;
void main(void) {
  gl_Position = worldViewProjection * vec4(position, 1.0);
  vUV = uv;
}`;

const HALO_FRAGMENT = `
precision highp float;
varying vec2 vUV;
uniform vec3 haloColor;
uniform float inner;
void main(void) {
  float r = length(vUV * 2.0 - 1.0);
  if (r > 1.0) discard;
  float t = clamp((r - inner) / (1.0 - inner), 0.0, 1.0);
  float a = pow(1.0 - t, 2.6) * 0.9;
  gl_FragColor = vec4(haloColor * a, 1.0);
}`;

function additive(material) {
  material.alphaMode = Constants.ALPHA_ONEONE;
  material.disableDepthWrite = true;
  material.backFaceCulling = false;
  return material;
}

/**
 * A point cloud: `positions` Float32Array (xyz), `colors` Float32Array (rgba), `sizes`
 * Float32Array (world-space diameter). Call `update(camera)` before rendering so the point
 * size follows the projection.
 */
export function createStarPoints(scene, name, positions, colors, sizes) {
  const mesh = new Mesh(name, scene);
  const n = sizes.length;
  const indices = new Uint32Array(n);
  for (let i = 0; i < n; i++) indices[i] = i;
  mesh.setVerticesData("position", positions, false, 3);
  mesh.setVerticesData("color", colors, false, 4);
  mesh.setVerticesData("size", sizes, false, 1);
  mesh.setIndices(indices);
  const material = additive(
    new ShaderMaterial(
      `${name}Mat`,
      scene,
      { vertexSource: POINTS_VERTEX, fragmentSource: POINTS_FRAGMENT },
      { attributes: ["position", "color", "size"], uniforms: ["worldViewProjection", "pixelScale"], needAlphaBlending: true },
    ),
  );
  material.pointsCloud = true;
  mesh.material = material;
  mesh.isPickable = false;
  mesh.alwaysSelectAsActiveMesh = true;
  return {
    mesh,
    update(camera) {
      const h = scene.getEngine().getRenderHeight();
      material.setFloat("pixelScale", h / (2 * Math.tan(camera.fov / 2)));
    },
  };
}

/** A camera-facing additive halo of diameter `size` around the origin of `parent`'s space. */
export function createHalo(scene, name, color, size, inner = 0.18) {
  const quad = CreatePlane(name, { size }, scene);
  quad.billboardMode = Mesh.BILLBOARDMODE_ALL;
  const material = additive(
    new ShaderMaterial(
      `${name}Mat`,
      scene,
      { vertexSource: HALO_VERTEX, fragmentSource: HALO_FRAGMENT },
      { attributes: ["position", "uv"], uniforms: ["worldViewProjection", "haloColor", "inner"], needAlphaBlending: true },
    ),
  );
  material.setColor3("haloColor", color);
  material.setFloat("inner", inner);
  quad.material = material;
  quad.isPickable = false;
  return quad;
}
