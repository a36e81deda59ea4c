// The shell: header (app name, the pages of the user's role, language, sign out) and the
// page for the current path. Every page but login and sign-up needs a session; without one
// (or once it expired) the login page shows, and comes back here after.
import { useEffect, useSyncExternalStore } from "react";
import { Agenda } from "./features/agenda/Agenda";
import { CsvLoad } from "./features/admin/CsvLoad";
import { BASE as DIRECTORY, DirectoryList, NewRecord, RecordPage } from "./features/admin/directory/DirectoryPages";
import { isKind } from "./features/admin/directory/kinds";
import { Login } from "./features/auth/Login";
import { Signup } from "./features/auth/Signup";
import { Appointment } from "./features/appointments/Appointment";
import { Appointments } from "./features/appointments/Appointments";
import { Book } from "./features/booking/Book";
import { Offer } from "./features/waitlist/Offer";
import { WaitlistPage } from "./features/waitlist/Waitlist";
import { reloadDirectory } from "./lib/directory";
import { type Key, type Lang, setLang, useLang, useT } from "./lib/i18n";
import { Link, match, navigate, useLocation } from "./lib/router";
import { type Role, type Session, end, getSession, subscribe } from "./lib/session";

const home: Record<Role, string> = {
  patient: "/app/appointments",
  secretary: "/app/agenda",
  doctor: "/app/agenda",
  admin: "/app/agenda",
};

const nav: Record<Role, [string, Key][]> = {
  patient: [
    ["/app/book", "navBook"],
    ["/app/appointments", "navAppointments"],
    ["/app/waitlist", "navWaitlist"],
  ],
  secretary: [["/app/agenda", "navAgenda"]],
  doctor: [["/app/agenda", "navAgenda"]],
  admin: [
    ["/app/agenda", "navAgenda"],
    [DIRECTORY, "navDirectory"],
    ["/app/admin/load", "navLoad"],
  ],
};

function useSession(): Session | null {
  return useSyncExternalStore(subscribe, getSession);
}

function Page({ session }: { session: Session }) {
  const { path, query } = useLocation();
  const t = useT();
  if (path === "/app" || path === "/app/" || path === "/") {
    return <Redirect to={home[session.role]} />;
  }
  if (session.role === "patient") {
    if (path === "/app/book") return <Book rescheduleId={query.get("reschedule")} welcome={query.get("welcome") === "1"} />;
    if (path === "/app/appointments") return <Appointments />;
    const one = match("/app/appointments/:id", path);
    if (one?.id) return <Appointment id={one.id} done={query.get("done")} />;
    if (path === "/app/waitlist") return <WaitlistPage />;
  }
  // The offer link of the waitlist's messages; the API shows it to its patient and to staff.
  const offer = match("/app/waitlist/offers/:id", path);
  if (offer?.id) return <Offer id={offer.id} />;
  if (session.role !== "patient" && path === "/app/agenda") return <Agenda />;
  if (session.role === "admin") {
    if (path === "/app/admin/load") return <CsvLoad />;
    const page = adminPage(path, query);
    if (page) return page;
  }
  if (path === "/app/login" || path === "/app/signup") return <Redirect to={home[session.role]} />;
  return <p role="alert">{t("notFound")}</p>;
}

/** The directory's pages: `/app/admin/directory[/:kind[/new|/:id]]`. */
function adminPage(path: string, query: URLSearchParams) {
  if (path === DIRECTORY || path === `${DIRECTORY}/`) return <Redirect to={`${DIRECTORY}/centers`} />;
  const list = match(`${DIRECTORY}/:kind`, path);
  if (isKind(list?.kind)) return <DirectoryList key={list.kind} kind={list.kind} />;
  const one = match(`${DIRECTORY}/:kind/:id`, path);
  if (!isKind(one?.kind) || !one.id) return null;
  if (one.id === "new") return <NewRecord key={one.kind} kind={one.kind} />;
  return <RecordPage key={`${one.kind}/${one.id}`} kind={one.kind} id={one.id} created={query.get("created") === "1"} />;
}

function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, { replace: true }), [to]);
  return null;
}

export function App() {
  const session = useSession();
  const lang = useLang();
  const t = useT();
  const { path, query } = useLocation();

  useEffect(() => {
    document.documentElement.lang = lang;
  }, [lang]);
  useEffect(() => {
    reloadDirectory();
  }, [session?.userId]);

  let page;
  if (session) page = <Page session={session} />;
  else if (path === "/app/signup") page = <Signup />;
  else {
    const here = path + (query.size ? `?${query}` : "");
    page = <Login next={path === "/app/login" ? query.get("next") : here} />;
  }

  return (
    <>
      <a className="skip" href="#main">
        {t("skipToContent")}
      </a>
      <header className="top">
        <Link href="/app" className="brand">
          Citaflow
        </Link>
        {session && (
          <nav aria-label="Citaflow">
            <ul>
              {nav[session.role].map(([href, key]) => (
                <li key={href}>
                  <Link href={href} aria-current={path === href || path.startsWith(`${href}/`) ? "page" : undefined}>
                    {t(key)}
                  </Link>
                </li>
              ))}
            </ul>
          </nav>
        )}
        <div className="tools">
          <label className="lang">
            <span className="sr-only">{t("language")}</span>
            <select value={lang} onChange={(e) => setLang(e.target.value as Lang)} aria-label={t("language")}>
              <option value="es">ES</option>
              <option value="en">EN</option>
            </select>
          </label>
          {session && (
            <>
              <span className="who">{session.username}</span>
              <button
                type="button"
                onClick={() => {
                  end("logout");
                  navigate("/app/login", { replace: true });
                }}
              >
                {t("logout")}
              </button>
            </>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </>
  );
}
