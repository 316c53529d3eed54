-- Marketplace: where each cart line came from. `source` is the `utm_source` the buyer
-- arrived with when the line was put in the cart ('marketplace' for the marketplace's
-- own discovery: that line carries the discovery fee at the cart's checkout; empty for
-- the seller's own storefront, link or promotion).
ALTER TABLE mkt_cart_items ADD COLUMN source TEXT NOT NULL DEFAULT '';
