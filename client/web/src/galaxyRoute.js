// The galaxy map's star card and route plotter: a click on a star opens its card; "Plot
// route" asks /api/route from the ship's system and draws the path over the lanes; "Engage
// autopilot" hands the destination to pilot.js, which opens the ship's system and sends
// `route {to}` once joined.
import { Color3 } from "@babylonjs/core/Maths/math.color.js";
import { CreateLineSystem } from "@babylonjs/core/Meshes/Builders/linesBuilder.js";

import { fetchRoute, fetchSystem } from "./api.js";
import * as pilot from "./pilot.js";
import { jumpCount, parseRoute, routeLegs, routeSegments, routeSummary } from "./routePlan.js";
import { createStarCard } from "./starCard.js";
import hook from "./testHook.js";

export class GalaxyRoute {
  /** `view`: the GalaxyView (systems, positions, byId, scene). */
  constructor(view) {
    this.view = view;
    this.selected = null; // system id
    this.route = null; // {systems, parsecs}
    this.mesh = null;
    this.token = 0; // bumped per selection: late answers for another star are dropped
    this.card = createStarCard({
      onPlot: () => this.plot(),
      onEngage: () => this.engage(),
      onView: () => this.selected && pilot.goToSystem(this.selected),
      onClose: () => this.select(null),
    });
    hook.engage = () => this.engage();
    hook.plotRoute = (id) => this.select(id) && this.plot();
    hook.selectStar = (id) => this.select(id);
    pilot.relocate({ navigate: false }); // the ship's system, for plotting
  }

  system(id) {
    const i = this.view.byId.get(id);
    return i === undefined ? null : this.view.systems[i];
  }

  /** Open the card of `id` (null closes it). Returns whether the star exists. */
  select(id) {
    const s = id ? this.system(id) : null;
    this.token += 1;
    this.selected = s ? s.id : null;
    hook.selected = this.selected;
    this._setRoute(null);
    if (!s) {
      this.card.hide();
      return false;
    }
    this.card.show(s);
    const token = this.token;
    fetchSystem(s.id).then(
      (info) => token === this.token && this.card.setPlanets(info.planets || []),
      (err) => token === this.token && this.card.setPlanets([], err.message || "unavailable"),
    );
    return true;
  }

  /** Ask /api/route from the ship's system to the selected star and draw it. */
  async plot() {
    const to = this.selected;
    if (!to) return null;
    const token = this.token;
    let from = pilot.shipSystem();
    if (!from && !pilot.inTransit()) {
      await pilot.relocate({ navigate: false });
      from = pilot.shipSystem();
    }
    const transit = pilot.inTransit();
    if (!from && transit) from = transit.to;
    const origin = from || "sol";
    let route;
    try {
      route = parseRoute(await fetchRoute(origin, to));
    } catch (err) {
      if (token === this.token) this.card.setRoute(`No route: ${err.message}`, [], false, true);
      return null;
    }
    if (token !== this.token) return null;
    if (!route) {
      this.card.setRoute("No route: malformed answer", [], false, true);
      return null;
    }
    this._setRoute(route);
    const legs = routeLegs(route, (id) => this.system(id)?.position).map((l) => ({
      name: this.system(l.to)?.name || l.to,
      parsecs: l.parsecs,
    }));
    const start = this.system(origin)?.name || origin;
    const canEngage = !!from && jumpCount(route) > 0;
    const note = from ? "" : " (from Sol: your ship has no system yet; join one first)";
    this.card.setRoute(`From ${start}: ${routeSummary(route)}${note}`, legs, canEngage);
    return route;
  }

  /** Engage the autopilot along the plotted route. */
  engage() {
    if (!this.route || jumpCount(this.route) === 0) return false;
    const to = this.route.systems.at(-1);
    pilot.requestRoute(to);
    return true;
  }

  _setRoute(route) {
    this.route = route;
    hook.plotted = route ? { systems: route.systems.slice(), parsecs: route.parsecs } : null;
    if (this.mesh) {
      this.mesh.dispose();
      this.mesh = null;
    }
    if (!route) return;
    const pos = (id) => {
      const i = this.view.byId.get(id);
      return i === undefined ? null : this.view.positions[i];
    };
    const segs = routeSegments(route, pos);
    if (!segs.length) return;
    this.mesh = CreateLineSystem("route", { lines: segs }, this.view.scene);
    this.mesh.color = new Color3(0.25, 1.0, 0.8);
    this.mesh.isPickable = false;
  }

  /** Ids whose labels should win the declutter (the route's stars). */
  highlighted() {
    return new Set(this.route ? this.route.systems : this.selected ? [this.selected] : []);
  }

  dispose() {
    this.card.dispose();
    hook.engage = hook.plotRoute = hook.selectStar = () => null;
  }
}
